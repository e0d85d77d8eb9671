"""The checkpointer and the store: langgraph's PostgreSQL saver and store, on our pool.

Both mark the database errors they raise as ours, so that a run failing because our database is
unavailable goes back to the queue, while a graph's own psycopg error (its database) fails the run."""
from __future__ import annotations

import contextlib

import orjson
import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.store.postgres.aio import AsyncPostgresStore
from psycopg_pool import AsyncConnectionPool

_OURS = "_agent_server_storage"


def is_storage_error(exc: BaseException) -> bool:
    """True for an OperationalError (a pool timeout included) raised by our checkpointer or store."""
    return isinstance(exc, psycopg.OperationalError) and getattr(exc, _OURS, False)


@contextlib.contextmanager
def storage_errors_marked():
    """Around our own database work during a run: an OperationalError from it is ours."""
    try:
        yield
    except psycopg.OperationalError as exc:
        setattr(exc, _OURS, True)
        raise


class _MarksStorageErrors:
    @contextlib.asynccontextmanager
    async def _cursor(self, *args, **kwargs):  # every database access of the saver and the store
        with storage_errors_marked():
            async with super()._cursor(*args, **kwargs) as cur:
                yield cur


class PooledPostgresSaver(_MarksStorageErrors, AsyncPostgresSaver):
    """AsyncPostgresSaver guards its connection with one lock, which on a pool (a connection per
    call) only makes every run's checkpoint reads and writes wait for each other's."""

    def __init__(self, pool: AsyncConnectionPool, serde=None) -> None:
        super().__init__(pool, serde=serde)  # serde: checkpointer.serde (persistence.make_serde), or the default
        self.lock = contextlib.nullcontext()


class PooledPostgresStore(_MarksStorageErrors, AsyncPostgresStore):
    """`index`: semantic search (store.index, its embed function loaded); `ttl`: store.ttl. Expired items
    are left out of every read at once; the queue's housekeeping deletes them (sweep_ttl)."""

    def __init__(self, pool: AsyncConnectionPool, *, index: dict | None = None, ttl: dict | None = None) -> None:
        super().__init__(pool, index=index or None, ttl={**(ttl or {}), "omit_expired": True})

    def _get_filter_condition(self, key: str, op: str, value):
        """Order comparisons as JSON values (numbers as numbers), not as their text: langgraph's compare
        `value->>key` with str(value), for which 10 < 9."""
        if op in _ORDER:
            return f"value->%s {_ORDER[op]} %s::jsonb", [key, orjson.dumps(value).decode()]
        return super()._get_filter_condition(key, op, value)


_ORDER = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
