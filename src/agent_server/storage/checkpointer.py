"""The checkpointer and the store: langgraph's PostgreSQL saver and store, on our pool.

Both mark the database errors they raise as ours, so that a run failing because our database is
unavailable goes back to the queue, while a graph's own psycopg error (its database) fails the run."""
from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import orjson
import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.types import _DeltaSnapshot
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
    """Our saver: langgraph's AsyncPostgresSaver on its own tables (same rows, so existing databases and the
    SQL of checkpoints.py stay valid), with the hot path rewritten. A checkpoint and its new blobs are one
    statement, a task's writes one statement, each value serialized once on the event loop (no thread hop
    per call), JSON by orjson; the latest checkpoint is read with its blobs and writes in one query (the
    library's). No lock: AsyncPostgresSaver's one lock per saver, on a pool (a connection per call), only
    makes every run's checkpoint reads and writes wait for each other's. The rest (list, delete, prune,
    copy, delta channels, setup) is the library's."""

    def __init__(self, pool: AsyncConnectionPool, serde=None) -> None:
        super().__init__(pool, serde=serde)  # serde: checkpointer.serde (persistence.make_serde), or the default
        self.lock = contextlib.nullcontext()

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        configurable = config["configurable"]
        thread_id, checkpoint_ns = configurable["thread_id"], configurable["checkpoint_ns"]
        # As the library stores them: None, str, int, float and bool inline in the checkpoint row, any other
        # value (a delta snapshot as `true` inline too) in a blob under its new version.
        inline, blobs = {}, {}
        for channel, value in checkpoint["channel_values"].items():
            if value is None or isinstance(value, (str, int, float, bool)):
                inline[channel] = value
            else:
                blobs[channel] = value
                if isinstance(value, _DeltaSnapshot):
                    inline[channel] = True
        channels, versions, types, data = [], [], [], []
        for channel, version in new_versions.items():
            if channel in blobs:
                kind, blob = self.serde.dumps_typed(blobs[channel])
                channels.append(channel), versions.append(str(version)), types.append(kind), data.append(blob)
        async with self._cursor() as cur:
            await cur.execute(_PUT_SQL, {
                "thread_id": thread_id, "ns": checkpoint_ns, "id": checkpoint["id"],
                "parent": configurable.get("checkpoint_id"),
                "checkpoint": _json({**checkpoint, "channel_values": inline}),
                "metadata": _json(get_serializable_checkpoint_metadata(config, metadata)),
                "channels": channels, "versions": versions, "types": types, "blobs": data,
            })
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns, "checkpoint_id": checkpoint["id"]}}

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str = "") -> None:
        # As the library does: writes to the special channels (errors, interrupts…) replace earlier ones
        # at their fixed index; others are kept as first written. One row per index, so that one statement
        # can carry them all (an upsert may not touch a row twice).
        upsert = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        rows: dict[int, tuple[str, Any]] = {}
        for idx, (channel, value) in enumerate(writes):
            idx = WRITES_IDX_MAP.get(channel, idx)
            if upsert or idx not in rows:
                rows[idx] = (channel, value)
        typed = [self.serde.dumps_typed(value) for _, value in rows.values()]
        configurable = config["configurable"]
        async with self._cursor() as cur:
            await cur.execute(_WRITES_UPSERT_SQL if upsert else _WRITES_INSERT_SQL, {
                "thread_id": configurable["thread_id"], "ns": configurable["checkpoint_ns"],
                "id": configurable["checkpoint_id"], "task_id": task_id, "task_path": task_path,
                "idxs": list(rows), "channels": [channel for channel, _ in rows.values()],
                "types": [kind for kind, _ in typed], "blobs": [blob for _, blob in typed],
            })

    async def _load_checkpoint_tuple(self, value) -> CheckpointTuple:
        """The library's, without its thread hop for the pending writes (a round of the event loop and a
        thread wake-up per read, for a deserialization that holds the GIL anyway)."""
        configurable = {"thread_id": value["thread_id"], "checkpoint_ns": value["checkpoint_ns"]}
        parent = value["parent_checkpoint_id"]
        return CheckpointTuple(
            {"configurable": {**configurable, "checkpoint_id": value["checkpoint_id"]}},
            {**value["checkpoint"], "channel_values": {
                **(value["checkpoint"].get("channel_values") or {}), **self._load_blobs(value["channel_values"])}},
            value["metadata"],
            {"configurable": {**configurable, "checkpoint_id": parent}} if parent else None,
            self._load_writes(value["pending_writes"]),
        )


def _json(value) -> str:
    """JSON for a jsonb parameter: orjson (the library's Jsonb goes through the json module)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# A checkpoint with its new blobs: one statement (a data-modifying CTE always runs), one round trip.
_PUT_SQL = """
WITH blobs AS (
    INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
    SELECT %(thread_id)s, %(ns)s, b.channel, b.version, b.type, b.blob
    FROM unnest(%(channels)s::text[], %(versions)s::text[], %(types)s::text[], %(blobs)s::bytea[])
         AS b(channel, version, type, blob)
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
)
INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
VALUES (%(thread_id)s, %(ns)s, %(id)s, %(parent)s, %(checkpoint)s::jsonb, %(metadata)s::jsonb)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata"""

_WRITES_SQL = """
INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
SELECT %(thread_id)s, %(ns)s, %(id)s, %(task_id)s, %(task_path)s, w.idx, w.channel, w.type, w.blob
FROM unnest(%(idxs)s::integer[], %(channels)s::text[], %(types)s::text[], %(blobs)s::bytea[]) AS w(idx, channel, type, blob)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) """
_WRITES_UPSERT_SQL = _WRITES_SQL + "DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob"
_WRITES_INSERT_SQL = _WRITES_SQL + "DO NOTHING"


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
