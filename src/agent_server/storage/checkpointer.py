"""The checkpointer and the store: langgraph's PostgreSQL saver and store, on our pool.

Both mark the database errors they raise as ours, so that a run failing because our database is
unavailable goes back to the queue, while a graph's own psycopg error (its database) fails the run."""
from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from .group import GroupCommit
from .serializer import CheckpointSerializer

log = logging.getLogger(__name__)
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


class LatestCheckpoint:
    """A thread's latest checkpoint, read in the round trip of the statement that claims a run on it: pipelined
    after it, in its transaction, so that it sees what committed before the run was created. The run's start
    takes it (PooledPostgresSaver.primed) instead of reading it again. Only an aid: whatever goes wrong with it,
    the run reads the checkpoint itself."""

    def __init__(self, select_sql: str, thread_id) -> None:
        self.select_sql = select_sql
        self.thread_id = str(thread_id)
        self.row: dict | None = None
        self.received = False
        self._cursor = None

    async def send(self, conn, only_if: str, args: tuple) -> None:
        """Send the read (nothing is waited for), returning a row only if the SQL condition `only_if` holds
        then: the statement before it claimed the run, say."""
        self._cursor = conn.cursor(binary=True, row_factory=dict_row)
        await self._cursor.execute(
            f"{self.select_sql}WHERE thread_id = %s AND checkpoint_ns = '' AND {only_if}"
            " ORDER BY checkpoint_id DESC LIMIT 1",
            (self.thread_id, *args),
        )

    async def receive(self) -> None:
        """Once the pipeline has synced; never raises: the statement before it has committed by then."""
        try:
            self.row = await self._cursor.fetchone()
            self.received = True
        except Exception as exc:  # a row that does not decode, say: the run's own read will say so
            log.info("thread %s: its latest checkpoint, read with the run's claim, is not used: %r", self.thread_id, exc)
        self._cursor = None


class PooledPostgresSaver(_MarksStorageErrors, AsyncPostgresSaver):
    """Our saver: langgraph's AsyncPostgresSaver on its own tables (same rows, so existing databases and the
    SQL of checkpoints.py stay valid), with the hot path rewritten.

    Writes are group-committed (storage/group.py): the checkpoints, their new blobs and the tasks' writes that
    every run of this process hands in while a statement is in flight go in the next one, so that under load a
    run's checkpoints cost a share of a round trip and of a commit, not one each. Each value is serialized once,
    on the event loop (no thread hop per call), JSON by orjson; messages are read back without being validated again
    (storage/serializer.py); the latest checkpoint is read with its blobs and
    writes in one query (the library's; for a run claimed as it is created, in the round trip of that claim:
    `primed`). No lock: AsyncPostgresSaver's one lock per saver only makes every run's reads and writes wait for
    each other's. The rest (list, delete, prune, copy, delta channels, setup) is the
    library's."""

    def __init__(self, pool: AsyncConnectionPool, serde=None) -> None:
        super().__init__(pool, serde=serde or CheckpointSerializer())  # serde: checkpointer.serde (persistence.make_serde)
        self.lock = contextlib.nullcontext()
        self._group: GroupCommit[_Rows, None] = GroupCommit(self._store, size=_Rows.size)
        self._primed: dict[str, LatestCheckpoint] = {}  # by run id: its thread's latest checkpoint, read with its claim

    def latest(self, thread_id) -> "LatestCheckpoint":
        return LatestCheckpoint(self.SELECT_SQL, thread_id)

    @contextlib.contextmanager
    def primed(self, run_id, latest: "LatestCheckpoint | None"):
        """While a run executes: its first read of its thread's latest checkpoint (langgraph's loop starting) takes
        `latest`, read in the round trip that claimed the run, instead of a query of its own."""
        if latest is None or not latest.received:
            yield
            return
        key = str(run_id)
        self._primed[key] = latest
        try:
            yield
        finally:
            self._primed.pop(key, None)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        configurable = config["configurable"]
        if self._primed and not configurable.get("checkpoint_id") and not configurable.get("checkpoint_ns"):
            latest = self._primed.pop(str(configurable.get("run_id")), None)
            if latest is not None and latest.thread_id == str(configurable["thread_id"]):
                row, latest.row = latest.row, None  # held no longer than needed (a long history, maybe)
                if row is None:
                    return None
                if row["checkpoint"]["v"] >= 4 or not row["parent_checkpoint_id"]:  # else: the library migrates it
                    return await self._load_checkpoint_tuple(row)
        return await super().aget_tuple(config)

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        configurable = config["configurable"]
        thread_id, ns = configurable["thread_id"], configurable["checkpoint_ns"]
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
        rows = _Rows()
        for channel, version in new_versions.items():
            if channel in blobs:
                rows.blobs.append((thread_id, ns, channel, str(version), *self.serde.dumps_typed(blobs[channel])))
        rows.checkpoints.append((
            thread_id, ns, checkpoint["id"], configurable.get("checkpoint_id"),
            _json({**checkpoint, "channel_values": inline}),
            _json(get_serializable_checkpoint_metadata(config, metadata)),
        ))
        await self._submit(rows)
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str = "") -> None:
        # As the library does: writes to the special channels (errors, interrupts…) replace earlier ones
        # at their fixed index; others are kept as first written.
        upsert = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        configurable = config["configurable"]
        key = (configurable["thread_id"], configurable["checkpoint_ns"], configurable["checkpoint_id"], task_id)
        rows = _Rows()
        for idx, (channel, value) in enumerate(writes):
            rows.writes.append((upsert, (*key, task_path, WRITES_IDX_MAP.get(channel, idx), channel,
                                         *self.serde.dumps_typed(value))))
        await self._submit(rows)

    async def aflush(self) -> None:
        """Wait for the writes handed in so far: a graph cancelled while its checkpoint was under way
        stopped waiting for it, and the write goes on (so that a group is never cut short)."""
        await self._group.flush()

    async def adelete_thread(self, thread_id: str) -> None:
        await self.aflush()  # nothing written before comes back after
        await super().adelete_thread(thread_id)

    async def _submit(self, rows: "_Rows") -> None:
        with storage_errors_marked():
            await self._group.submit(rows)

    async def _store(self, group: list["_Rows"]) -> list[None | BaseException]:
        """A group in one statement; when it fails for what one of them holds (not a lost connection), each on
        its own, so that only the one at fault fails."""
        try:
            await self._execute(group)
            return [None] * len(group)
        except psycopg.Error as exc:
            if len(group) == 1 or _connection_lost(exc):
                raise
        results: list[None | BaseException] = []
        for rows in group:
            try:
                await self._execute([rows])
                results.append(None)
            except psycopg.Error as exc:
                if _connection_lost(exc):
                    raise
                results.append(exc)
        return results

    async def _execute(self, group: list["_Rows"]) -> None:
        rows = _Rows.merged(group)
        if rows.blobs or rows.checkpoints or rows.writes:  # (no writes at all: nothing to do)
            async with self._cursor() as cur:
                await cur.execute(*rows.statement())

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


@dataclass
class _Rows:
    """What one or more calls write: blob rows (thread, ns, channel, version, type, blob), checkpoint rows
    (thread, ns, id, parent, checkpoint, metadata) and write rows (upsert?, (thread, ns, id, task, path, idx,
    channel, type, blob))."""

    blobs: list[tuple] = field(default_factory=list)
    checkpoints: list[tuple] = field(default_factory=list)
    writes: list[tuple[bool, tuple]] = field(default_factory=list)

    def size(self) -> int:
        """Roughly the bytes these rows send."""
        return (sum(len(row[5]) for row in self.blobs) + sum(len(row[4]) + len(row[5]) for row in self.checkpoints)
                + sum(len(row[8]) for _, row in self.writes) + 200 * (len(self.blobs) + len(self.writes) + 1))

    @staticmethod
    def merged(group: list["_Rows"]) -> "_Rows":
        """Several calls' rows as one statement may carry them, with the outcome of making the calls in order:
        an upsert may not touch a row twice in one statement, so a checkpoint written twice keeps its last
        version, a write its last upserted value (else its first), a blob its first."""
        out = _Rows()
        checkpoints: dict[tuple, tuple] = {}
        writes: dict[tuple, tuple[bool, tuple]] = {}
        for rows in group:
            out.blobs += rows.blobs
            for row in rows.checkpoints:
                checkpoints[row[:3]] = row
            for upsert, row in rows.writes:
                key = (*row[:4], row[5])  # thread, ns, checkpoint, task, idx
                if upsert or key not in writes:
                    writes[key] = (upsert, row)
        out.checkpoints = list(checkpoints.values())
        out.writes = list(writes.values())
        return out

    def statement(self) -> tuple[str, dict]:
        """One statement writing these rows (data-modifying CTEs always run, each on rows of its own), with
        its parameters; only the parts that have rows."""
        upserts = [row for upsert, row in self.writes if upsert]
        inserts = [row for upsert, row in self.writes if not upsert]
        parts = [(name, rows) for name, rows in (("b", self.blobs), ("c", self.checkpoints), ("u", upserts),
                                                 ("w", inserts)) if rows]
        params = {f"{name}{i}": list(column) for name, rows in parts for i, column in enumerate(zip(*rows))}
        return _statement(tuple(name for name, _ in parts)), params


@functools.cache
def _statement(parts: tuple[str, ...]) -> str:
    *ctes, last = [_PARTS[name] for name in parts]
    return "".join(f"{'WITH' if i == 0 else ','} p{i} AS ({cte})\n" for i, cte in enumerate(ctes)) + last


def _connection_lost(exc: psycopg.Error) -> bool:
    """An error of the database or the connection, not of what one call wrote: PostgreSQL's limits (a value
    too large, out of memory: classes 53 and 54) are OperationalErrors too, but one item may be the cause."""
    return isinstance(exc, psycopg.OperationalError) and not isinstance(
        exc, (psycopg.errors.ProgramLimitExceeded, psycopg.errors.InsufficientResources))


def _json(value) -> str:
    """JSON for a jsonb parameter: orjson (the library's Jsonb goes through the json module)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _writes_sql(p: str, conflict: str) -> str:
    return f"""INSERT INTO checkpoint_writes
        (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
    SELECT * FROM unnest(%({p}0)b::text[], %({p}1)b::text[], %({p}2)b::text[], %({p}3)b::text[], %({p}4)b::text[],
                         %({p}5)b::integer[], %({p}6)b::text[], %({p}7)b::text[], %({p}8)b::bytea[])
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) {conflict}"""


_PARTS = {
    "b": """INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
    SELECT * FROM unnest(%(b0)b::text[], %(b1)b::text[], %(b2)b::text[], %(b3)b::text[], %(b4)b::text[],
                         %(b5)b::bytea[])
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING""",
    "c": """INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
    SELECT t, n, i, p, c::jsonb, m::jsonb
    FROM unnest(%(c0)b::text[], %(c1)b::text[], %(c2)b::text[], %(c3)b::text[], %(c4)b::text[], %(c5)b::text[])
         AS c(t, n, i, p, c, m)
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
    DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata""",
    "u": _writes_sql("u", "DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob"),
    "w": _writes_sql("w", "DO NOTHING"),
}


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
