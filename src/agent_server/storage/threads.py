"""Threads: metadata, status and the latest values; their checkpoints live in the checkpointer's tables."""
from __future__ import annotations

import asyncio
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from ..errors import Conflict, Invalid, NotFound, TooManyRequests
from .savers import SqlCheckpointOps
from .base import ANYONE, Filter, Repository, jsonb, order_clause, select_clause

COLUMNS = [
    "thread_id", "created_at", "updated_at", "state_updated_at", "metadata", "status", "config", "values",
    "interrupts", "error",
]
SELECTABLE = [c for c in COLUMNS if c != "error"]
SORTABLE = {"thread_id", "status", "created_at", "updated_at", "state_updated_at"}
EXTRACTABLE = {"values", "metadata", "config", "interrupts"}
PUBLIC = ", ".join(f'"{c}"' for c in COLUMNS)
TTL = """CASE WHEN expires_at IS NULL THEN NULL ELSE jsonb_build_object(
    'strategy', ttl_strategy, 'ttl_minutes', ttl_minutes, 'expires_at', expires_at) END AS ttl"""
EXPIRES = "now() + %(ttl_minutes)s * interval '1 minute'"
# A thread the TTL sweep may touch: no run in flight, pending ones included (their clients were told
# the run is queued).
IDLE = """active_run_id IS NULL AND NOT EXISTS (
    SELECT 1 FROM run WHERE run.thread_id = thread.thread_id AND run.status IN ('pending', 'running'))"""
# Re-checked on the locked threads with a fresh snapshot (a run queued just before the lock counts),
# and skipping a thread whose state is being updated (its session lock, see `locked`).
STILL_IDLE = f"thread_id = ANY(%s) AND {IDLE} AND pg_try_advisory_xact_lock(hashtextextended(thread_id::text, 0))"
SWEEP_LIMIT = 1000  # threads per sweep and strategy
MAX_LOCK_WAITERS = 32  # state updates one process lets queue on one thread; past it, 429


FILTERABLE = {"thread_id", "status"}  # columns a Filter may name, besides metadata


def _visible(filter: Filter, alias: str = "thread") -> tuple[str, dict]:
    return filter.sql(alias, FILTERABLE)


def ttl_params(ttl: dict | None) -> dict:
    ttl = ttl or {}
    return {"ttl_strategy": ttl.get("strategy"), "ttl_minutes": ttl.get("ttl")}


def _extract_clause(extract: dict[str, str] | None, params: dict) -> str:
    """`{"alias": "values.messages[-1].content"}` as one jsonb column `extracted` (paths become parameters)."""
    if not extract:
        return ""
    pairs = []
    for i, (alias, path) in enumerate(extract.items()):
        column, *keys = re.findall(r"[^.\[\]]+", path) or [""]
        if column not in EXTRACTABLE:
            raise Invalid(f"extract path {path!r} must start with one of {sorted(EXTRACTABLE)}")
        params[f"alias{i}"], params[f"path{i}"] = alias, keys
        pairs.append(f'%(alias{i})s::text, "{column}" #> %(path{i})s::text[]')
    return f", jsonb_build_object({', '.join(pairs)}) AS extracted"


@dataclass
class _Waiting:
    """Those in this process waiting for (or holding) one thread's lock."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    count: int = 0


class ThreadRepo(Repository):
    def __init__(self, pool: AsyncConnectionPool, checkpoints=None) -> None:
        super().__init__(pool)
        self.checkpoints = checkpoints or SqlCheckpointOps()  # storage/savers.py: SQL, or the saver's API
        self._waiting: dict[UUID, _Waiting] = {}
        self._holders = asyncio.Semaphore(max(1, pool.max_size // 4))

    async def create(
        self,
        thread_id: UUID,
        *,
        metadata: dict,
        if_exists: str = "raise",
        ttl: dict | None = None,
        ephemeral: bool = False,
        conn=None,
    ) -> tuple[dict, bool]:
        """The thread, and whether this call created it. `ttl`: {"strategy", "ttl": minutes} or None."""
        row = await self.one(
            f"""INSERT INTO thread (thread_id, metadata, ephemeral, ttl_strategy, ttl_minutes, expires_at)
                VALUES (%(thread_id)s, %(metadata)s, %(ephemeral)s, %(ttl_strategy)s, %(ttl_minutes)s, {EXPIRES})
                ON CONFLICT (thread_id) DO NOTHING RETURNING {PUBLIC}""",
            {"thread_id": thread_id, "metadata": jsonb(metadata), "ephemeral": ephemeral, **ttl_params(ttl)},
            conn,
        )
        if row is None:
            if if_exists == "do_nothing":
                return await self.get(thread_id, conn), False
            raise Conflict(f"Thread with ID {thread_id} already exists")
        return row, True

    async def get(self, thread_id: UUID, conn=None, *, include_ttl: bool = False, filter: Filter = ANYONE) -> dict:
        extra = f", {TTL}" if include_ttl else ""
        visible, params = _visible(filter)
        row = await self.one(
            f"SELECT {PUBLIC}{extra} FROM thread WHERE thread_id = %(thread_id)s AND {visible}",
            {**params, "thread_id": thread_id},
            conn,
        )
        if row is None:
            raise NotFound(f"Thread with ID {thread_id} not found")
        return row

    @asynccontextmanager
    async def locked(self, thread_id: UUID, *, idle: bool = False, filter: Filter = ANYONE):
        """Hold the thread's session lock: an advisory lock (the checkpointer writes on other connections).
        Yields the connection holding it.

        Waiters hold no pooled connection: they queue in this process first, so that per thread only
        the one next in line takes a connection (to wait on other processes' holders), and no more
        than a quarter of the pool ever waits on or holds thread locks.

        `idle`: also hold the thread's row lock, in a transaction until the block ends, and refuse (409)
        when the thread has runs pending or running; run creation takes that row lock, so no run is
        queued meanwhile. Writes to the thread row inside the block must pass the connection yielded."""
        waiting = self._waiting.setdefault(thread_id, _Waiting())
        if waiting.count >= MAX_LOCK_WAITERS:
            raise TooManyRequests(
                f"Thread {thread_id} already has {MAX_LOCK_WAITERS} state updates waiting; retry shortly."
            )
        waiting.count += 1
        try:
            async with waiting.lock, self._holders, self.pool.connection() as conn:
                try:  # the lock inside: cancelled just as it was granted, it is still released
                    await conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (str(thread_id),))
                    if not idle:
                        yield conn
                    else:
                        async with conn.transaction():
                            await self._refuse_inflight(conn, thread_id, filter)
                            yield conn
                finally:
                    await conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (str(thread_id),))
        finally:
            waiting.count -= 1
            if not waiting.count:
                del self._waiting[thread_id]

    async def _refuse_inflight(self, conn, thread_id: UUID, filter: Filter) -> None:
        """Lock the thread's row; 404 if the caller cannot see it, 409 (the official server's words) if
        it has runs pending or running."""
        visible, params = _visible(filter)
        if await self.one(
            f"SELECT 1 FROM thread WHERE thread_id = %(thread_id)s AND {visible} FOR UPDATE",
            {**params, "thread_id": thread_id}, conn,
        ) is None:
            raise NotFound(f"Thread with ID {thread_id} not found")
        inflight = await self.all(
            """SELECT run_id, thread_id, assistant_id, metadata, status, kwargs, multitask_strategy, created_at,
                      updated_at, NULL AS langsmith_session_name
               FROM run WHERE thread_id = %s AND status IN ('pending', 'running') ORDER BY created_at""",
            (thread_id,), conn,
        )
        if inflight:
            raise Conflict(f"Thread {thread_id} has in-flight runs: {inflight!r}")

    async def existing(self, thread_ids: list[UUID], filter: Filter = ANYONE) -> list[UUID]:
        """Those of these threads that exist, in the order given."""
        visible, params = _visible(filter)
        rows = await self.all(
            f"SELECT thread_id FROM thread WHERE thread_id = ANY(%(ids)s) AND {visible}", {**params, "ids": thread_ids}
        )
        found = {r["thread_id"] for r in rows}
        return [t for t in thread_ids if t in found]

    async def exists(self, thread_id: UUID) -> bool:
        return await self.one("SELECT 1 FROM thread WHERE thread_id = %s", (thread_id,)) is not None

    async def update(
        self, thread_id: UUID, *, metadata: dict | None, ttl: dict | None = None, filter: Filter = ANYONE
    ) -> dict:
        visible, params = _visible(filter)
        row = await self.one(
            f"""UPDATE thread SET metadata = metadata || %(metadata)s, updated_at = now(),
                    ttl_strategy = coalesce(%(ttl_strategy)s, ttl_strategy),
                    ttl_minutes = coalesce(%(ttl_minutes)s, ttl_minutes),
                    expires_at = coalesce({EXPIRES}, expires_at)
                WHERE thread_id = %(thread_id)s AND {visible} RETURNING {PUBLIC}""",
            {**params, "metadata": jsonb(metadata or {}), "thread_id": thread_id, **ttl_params(ttl)},
        )
        if row is None:
            raise NotFound(f"Thread with ID {thread_id} not found")
        return row

    async def delete(self, thread_id: UUID, conn=None, filter: Filter = ANYONE) -> None:
        visible, params = _visible(filter)
        sql = f"DELETE FROM thread WHERE thread_id = %(thread_id)s AND {visible} RETURNING 1"
        if await self.one(sql, {**params, "thread_id": thread_id}, conn) is None:
            raise NotFound(f"Thread with ID {thread_id} not found")

    async def set_state(self, thread_id: UUID, *, values, interrupts: dict, paused: bool, conn=None) -> None:
        """Record the thread's latest state after a state update: `paused` (next nodes left to run or
        interrupts waiting) makes it interrupted, else idle; a busy thread (a run running or waiting: one may be
        queued meanwhile when this runs without the thread's lock, as for a new thread's supersteps) stays busy."""
        await self.execute(
            """UPDATE thread SET "values" = %s, interrupts = %s, updated_at = now(),
                   status = CASE WHEN active_run_id IS NOT NULL OR status = 'busy' THEN status
                                 WHEN %s THEN 'interrupted' ELSE 'idle' END
               WHERE thread_id = %s""",
            (jsonb(values), jsonb(interrupts), paused, thread_id),
            conn,
        )

    @staticmethod
    def _where(ids, metadata, values, status, filter: Filter) -> tuple[str, dict]:
        visible, params = _visible(filter)
        clauses = [visible]
        if ids:
            clauses.append("thread_id = ANY(%(ids)s)")
            params["ids"] = list(ids)
        if metadata:
            clauses.append("metadata @> %(metadata)s")
            params["metadata"] = jsonb(metadata)
        if values:
            clauses.append('"values" @> %(values)s')
            params["values"] = jsonb(values)
        if status:
            clauses.append("status = %(status)s")
            params["status"] = status
        return " AND ".join(clauses), params

    async def search(
        self, *, ids=None, metadata=None, values=None, status=None, limit=10, offset=0,
        sort_by=None, sort_order=None, select=None, extract=None, filter: Filter = ANYONE,
    ) -> list[dict]:
        where, params = self._where(ids, metadata, values, status, filter)
        columns = select_clause(select, SELECTABLE) if select else PUBLIC
        order = order_clause(sort_by, sort_order, SORTABLE, "updated_at")
        return await self.all(
            f"""SELECT {columns}{_extract_clause(extract, params)} FROM thread WHERE {where}
                {order}, thread_id LIMIT %(limit)s OFFSET %(offset)s""",
            {**params, "limit": limit, "offset": offset},
        )

    async def count(self, *, ids=None, metadata=None, values=None, status=None, filter: Filter = ANYONE) -> int:
        where, params = self._where(ids, metadata, values, status, filter)
        return await self.scalar(f"SELECT count(*) FROM thread WHERE {where}", params)

    async def copy(self, thread_id: UUID, new_id: UUID, filter: Filter = ANYONE) -> dict:
        """A new thread with the same metadata, values and checkpoints."""
        visible, params = _visible(filter)
        async with self.pool.connection() as conn, conn.transaction():
            row = await self.one(
                f"""INSERT INTO thread (thread_id, metadata, config, status, "values", interrupts)
                    SELECT %(new)s, metadata, config, CASE WHEN status = 'busy' THEN 'idle' ELSE status END,
                           "values", interrupts FROM thread WHERE thread_id = %(old)s AND {visible}
                    RETURNING {PUBLIC}""",
                {**params, "new": new_id, "old": thread_id},
                conn,
            )
            if row is None:
                raise NotFound(f"Thread with ID {thread_id} not found")
            await self.checkpoints.copy_thread(conn, thread_id, new_id)
            return row

    async def delete_run_checkpoints(self, thread_id: UUID, run_id: UUID) -> None:
        """Rollback: forget the checkpoints a run wrote."""
        async with self.pool.connection() as conn:
            await self.checkpoints.delete_run(conn, thread_id, run_id)

    async def _sweep(self, due: str, statement: str, then=None) -> list[UUID]:
        """Run `statement` (its rows: thread ids) on the threads `due` selects that the TTL sweep may touch.

        They are locked first, SKIP LOCKED: a thread a run is being queued on waits for the next sweep,
        and a run queued after the lock waits for this transaction (then finds the thread gone, or kept)."""
        async with self.pool.connection() as conn, conn.transaction():
            locked = await self.all(
                f"SELECT thread_id FROM thread WHERE ({due}) AND {IDLE} LIMIT {SWEEP_LIMIT} FOR UPDATE SKIP LOCKED",
                None,
                conn,
            )
            rows = await self.all(statement, ([r["thread_id"] for r in locked],), conn)
            done = [r["thread_id"] for r in rows]
            if then is not None:
                await then(conn, done)
            return done

    async def delete_expired(self) -> list[UUID]:
        """Delete the threads past a `delete` TTL, and those of stateless runs that ended without a
        worker (cancelled while pending, or given up on): with their runs and their checkpoints."""
        return await self._sweep(
            "(expires_at < now() AND coalesce(ttl_strategy, 'delete') = 'delete') OR ephemeral",
            f"DELETE FROM thread WHERE {STILL_IDLE} RETURNING thread_id",
            then=self.checkpoints.delete_threads,
        )

    async def renew_expired_keep_latest(self) -> list[UUID]:
        """The threads past a `keep_latest` TTL, which the caller is to prune to their latest
        checkpoint; each gets its TTL again."""
        return await self._sweep(
            "expires_at < now() AND ttl_strategy = 'keep_latest'",
            f"""UPDATE thread SET expires_at = now() + ttl_minutes * interval '1 minute'
                WHERE {STILL_IDLE} RETURNING thread_id""",
        )

    async def storage(self, thread_id: UUID, filter: Filter = ANYONE) -> dict:
        await self.get(thread_id, filter=filter)
        async with self.pool.connection() as conn:
            return await self.checkpoints.usage(conn, thread_id)
