"""Runs and the durable queue: creation with multitask strategies, claims, leases, completion."""
from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from ..errors import Conflict, NotFound
from .base import Repository, jsonb

COLUMNS = [
    "run_id", "thread_id", "assistant_id", "created_at", "updated_at", "status", "metadata", "kwargs",
    "multitask_strategy",
]
PUBLIC = ", ".join(f"run.{c}" for c in COLUMNS) + ", NULL AS langsmith_session_name"
INFLIGHT = ("pending", "running")


@dataclass
class NewRun:
    run_id: UUID
    thread_id: UUID
    assistant_id: UUID
    graph_id: str
    kwargs: dict
    metadata: dict = field(default_factory=dict)
    multitask_strategy: str = "enqueue"
    after_seconds: float = 0
    if_not_exists: str = "reject"
    ephemeral: bool = False  # a stateless run's own thread, deleted with the run


@dataclass
class Created:
    run: dict
    cancelled: list[UUID]  # in-flight runs ended (pending) or asked to stop (running) by interrupt/rollback
    running: list[UUID]  # those of them a worker executes: it must be signalled


class RunRepo(Repository):
    async def create(self, new: NewRun) -> Created:
        """Queue a run. The run row and the thread's status change commit together."""
        params = {
            "run": new.run_id, "thread": new.thread_id, "assistant": new.assistant_id,
            "metadata": jsonb(new.metadata), "kwargs": jsonb(new.kwargs), "strategy": new.multitask_strategy,
            "after": new.after_seconds, "graph_id": new.graph_id,
        }
        insert_run = f"""INSERT INTO run (run_id, thread_id, assistant_id, metadata, kwargs, multitask_strategy, available_at)
                VALUES (%(run)s, %(thread)s, %(assistant)s, %(metadata)s, %(kwargs)s, %(strategy)s,
                        now() + %(after)s * interval '1 second')
                RETURNING {PUBLIC}"""
        thread_metadata = "jsonb_build_object('graph_id', %(graph_id)s::text, 'assistant_id', %(assistant)s::text)"
        if new.ephemeral:  # a thread of its own: nothing to wait for or cancel, so one statement
            row = await self.one(
                f"""WITH thread_row AS (
                        INSERT INTO thread (thread_id, ephemeral, status, metadata)
                        VALUES (%(thread)s, true, 'busy', {thread_metadata}))
                    {insert_run}""",
                params,
            )
            return Created(row, [], [])
        async with self.pool.connection() as conn, conn.transaction():
            if new.if_not_exists == "create":
                await conn.execute(
                    "INSERT INTO thread (thread_id) VALUES (%(thread)s) ON CONFLICT DO NOTHING", params
                )
            if not await self._lock_thread(conn, new.thread_id):
                raise NotFound("Thread or assistant not found.")
            inflight = await self.all(
                "SELECT run_id, status FROM run WHERE thread_id = %s AND status = ANY(%s) ORDER BY created_at",
                (new.thread_id, list(INFLIGHT)),
                conn,
            )
            cancelled: list[UUID] = []
            running: list[UUID] = []
            if inflight:
                strategy = new.multitask_strategy
                if strategy == "reject":
                    raise Conflict("Thread is already running a task. Wait for it to finish or choose a different multitask strategy.")
                if strategy in ("interrupt", "rollback"):
                    cancelled = [r["run_id"] for r in inflight]
                    running = await self._cancel(conn, new.thread_id, cancelled, strategy)
            row = await self.one(insert_run, params, conn)
            await conn.execute(
                f"""UPDATE thread SET status = 'busy', updated_at = now(), metadata = metadata || {thread_metadata}
                    WHERE thread_id = %(thread)s""",
                params,
            )
            return Created(row, cancelled, running)

    async def _cancel(self, conn, thread_id: UUID, run_ids: list[UUID], action: str) -> list[UUID]:
        """Pending runs end at once; running ones are flagged for their worker. Returns the running ones."""
        if action == "rollback":
            await conn.execute(
                "DELETE FROM run WHERE thread_id = %s AND run_id = ANY(%s) AND status = 'pending'", (thread_id, run_ids)
            )
        else:
            await conn.execute(
                """UPDATE run SET status = 'interrupted', updated_at = now()
                   WHERE thread_id = %s AND run_id = ANY(%s) AND status = 'pending'""",
                (thread_id, run_ids),
            )
        rows = await self.all(
            """UPDATE run SET cancel_action = %s, updated_at = now()
               WHERE thread_id = %s AND run_id = ANY(%s) AND status = 'running' RETURNING run_id""",
            (action, thread_id, run_ids),
            conn,
        )
        await self._settle_thread(conn, thread_id)
        return [r["run_id"] for r in rows]

    async def _settle_thread(self, conn, thread_id: UUID, outcome: str | None = None) -> None:
        """A thread is busy while it has runs in flight; otherwise it takes the last run's outcome."""
        await conn.execute(
            """UPDATE thread SET updated_at = now(), status = CASE
                   WHEN active_run_id IS NOT NULL
                        OR EXISTS (SELECT 1 FROM run WHERE run.thread_id = thread.thread_id AND status = 'pending')
                   THEN 'busy'
                   ELSE coalesce(%s, CASE WHEN status = 'busy' THEN 'idle' ELSE status END) END
               WHERE thread_id = %s""",
            (outcome, thread_id),
        )

    async def cancel(
        self, thread_id: UUID | None, run_ids: list[UUID] | None, action: str, status: str | None = None
    ) -> tuple[list[UUID], list[UUID]]:
        """Cancel in-flight runs by ids (on a thread), by thread, or by status.

        Returns the runs matched, and the running ones, whose workers must be signalled."""
        selection = """FROM run WHERE (%(thread)s::uuid IS NULL OR thread_id = %(thread)s)
                         AND (%(ids)s::uuid[] IS NULL OR run_id = ANY(%(ids)s))
                         AND status = ANY(%(statuses)s)"""
        params = {"thread": thread_id, "ids": run_ids, "statuses": [status] if status else list(INFLIGHT)}
        async with self.pool.connection() as conn, conn.transaction():
            await self._lock_threads(conn, f"SELECT thread_id {selection}", params)
            rows = await self.all(f"SELECT run_id, thread_id {selection} ORDER BY thread_id FOR UPDATE", params, conn)
            running: list[UUID] = []
            by_thread: dict[UUID, list[UUID]] = {}
            for r in rows:
                by_thread.setdefault(r["thread_id"], []).append(r["run_id"])
            for tid, ids in by_thread.items():
                running += await self._cancel(conn, tid, ids, action)
            return [r["run_id"] for r in rows], running

    async def _lock_thread(self, conn, thread_id: UUID) -> bool:
        """Lock a thread before touching its runs (the one lock order: no deadlock). False: no such thread."""
        return await self.one("SELECT 1 FROM thread WHERE thread_id = %s FOR UPDATE", (thread_id,), conn) is not None

    async def _lock_threads(self, conn, thread_ids_sql: str, params) -> None:
        """Lock threads before their runs, in one order, as claim and finish do: no deadlock."""
        await conn.execute(
            f"SELECT 1 FROM thread WHERE thread_id IN ({thread_ids_sql}) ORDER BY thread_id FOR UPDATE", params
        )

    async def queue_stats(self) -> dict[str, float]:
        """Runs by status, and how long the oldest available pending run has waited (seconds)."""
        rows = await self.all("SELECT status, count(*) AS n FROM run GROUP BY status")
        stats = {f"runs_{status}": 0.0 for status in ("pending", "running", "success", "error", "timeout", "interrupted")}
        stats.update({f"runs_{r['status']}": float(r["n"]) for r in rows})
        stats["queue_oldest_pending_seconds"] = await self.scalar(
            """SELECT coalesce(extract(epoch FROM now() - min(available_at)), 0)::float FROM run
               WHERE status = 'pending' AND available_at <= now()"""
        )
        return stats

    async def active_run(self, thread_id: UUID) -> UUID | None:
        return await self.scalar("SELECT active_run_id FROM thread WHERE thread_id = %s", (thread_id,))

    async def count_existing(self, run_ids: list[UUID]) -> int:
        return await self.scalar("SELECT count(*) FROM run WHERE run_id = ANY(%s)", (run_ids,))

    async def get(self, run_id: UUID, thread_id: UUID | None = None) -> dict:
        row = await self.one(
            f"SELECT {PUBLIC} FROM run WHERE run_id = %s AND (%s::uuid IS NULL OR thread_id = %s)",
            (run_id, thread_id, thread_id),
        )
        if row is None:
            raise NotFound(f"Run {run_id} not found")
        return row

    async def list(self, thread_id: UUID, *, status: str | None, limit: int, offset: int) -> list[dict]:
        return await self.all(
            f"""SELECT {PUBLIC} FROM run WHERE thread_id = %s AND (%s::text IS NULL OR status = %s)
                ORDER BY created_at DESC LIMIT %s OFFSET %s""",
            (thread_id, status, status, limit, offset),
        )

    async def delete(self, run_id: UUID, thread_id: UUID) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            await self._lock_thread(conn, thread_id)
            row = await self.one(
                "SELECT status FROM run WHERE run_id = %s AND thread_id = %s FOR UPDATE", (run_id, thread_id), conn
            )
            if row is None:
                raise NotFound(f"Run {run_id} not found")
            if row["status"] == "running":
                raise Conflict(f"Run {run_id} is running; cancel it first")
            await conn.execute("DELETE FROM run WHERE run_id = %s", (run_id,))
            await self._settle_thread(conn, thread_id)

    # ---- queue ---------------------------------------------------------------------------------

    async def claim(self, worker_id: str, limit: int, lease_seconds: float) -> list[dict]:
        """Start up to `limit` runs, the oldest pending run of each idle thread.

        The thread row is locked (SKIP LOCKED) and re-checked to have no active run, so at most one
        run per thread is ever running, whatever the number of workers."""
        return await self.all(
            """WITH candidate AS (
                   SELECT DISTINCT ON (thread_id) run_id, thread_id, available_at
                   FROM run WHERE status = 'pending'
                   ORDER BY thread_id, created_at
               ), ready AS (
                   SELECT t.thread_id, c.run_id FROM thread t JOIN candidate c USING (thread_id)
                   WHERE t.active_run_id IS NULL AND c.available_at <= now()
                   ORDER BY c.available_at LIMIT %(limit)s
                   FOR UPDATE OF t SKIP LOCKED
               ), started AS (
                   -- re-checked on the latest row: a run cancelled or deleted meanwhile is not started
                   UPDATE run SET status = 'running', attempt = attempt + 1, lease_owner = %(worker)s,
                       lease_expires_at = now() + %(lease)s * interval '1 second', updated_at = now()
                   FROM ready WHERE run.run_id = ready.run_id AND run.status = 'pending'
                   RETURNING run.*
               ), taken AS (
                   UPDATE thread SET active_run_id = started.run_id, status = 'busy', updated_at = now()
                   FROM started WHERE thread.thread_id = started.thread_id
               )
               SELECT * FROM started""",
            {"limit": limit, "worker": worker_id, "lease": lease_seconds},
        )

    async def next_available_in(self) -> float | None:
        """Seconds until the earliest delayed run becomes available (None when nothing waits)."""
        # Runs available now but waiting behind a busy thread are not counted: the run ahead of
        # them wakes the queue when it ends.
        return await self.scalar(
            """SELECT extract(epoch FROM min(available_at) - now())::float FROM run
               WHERE status = 'pending' AND available_at > now()"""
        )

    async def heartbeat(self, worker_id: str, run_ids: list[UUID], lease_seconds: float) -> dict[UUID, str | None]:
        """Renew leases; returns, for each run this worker still holds, the cancel asked of it (or None)."""
        rows = await self.all(
            """UPDATE run SET lease_expires_at = now() + %s * interval '1 second'
               WHERE run_id = ANY(%s) AND lease_owner = %s AND status = 'running'
               RETURNING run_id, cancel_action""",
            (lease_seconds, run_ids, worker_id),
        )
        return {r["run_id"]: r["cancel_action"] for r in rows}

    async def finish(
        self,
        run_id: UUID,
        thread_id: UUID,
        worker_id: str,
        *,
        status: str,
        output,
        thread_status: str | None,
        values,
        interrupts: dict | None,
        error=None,
        rollback: bool = False,
        delete_thread: bool = False,
    ) -> bool:
        """End a run, free its thread and record the thread's new state, in one transaction.

        Only the worker holding the run's lease may; False when the lease had passed to another."""
        held = "run_id = %(run)s AND status = 'running' AND lease_owner = %(worker)s"
        params = {"run": run_id, "worker": worker_id, "status": status, "output": jsonb(output), "thread": thread_id}
        if delete_thread:  # a temporary thread goes, and its run with it: one statement
            return await self.one(
                f"""DELETE FROM thread WHERE thread_id = %(thread)s
                      AND EXISTS (SELECT 1 FROM run WHERE {held}) RETURNING 1""",
                params,
            ) is not None
        async with self.pool.connection() as conn, conn.transaction():
            await self._lock_thread(conn, thread_id)
            if rollback:
                sql = f"DELETE FROM run WHERE {held} RETURNING 1"
            else:
                sql = f"""UPDATE run SET status = %(status)s, output = %(output)s, updated_at = now(),
                              lease_owner = NULL, lease_expires_at = NULL WHERE {held} RETURNING 1"""
            if await self.one(sql, params, conn) is None:
                return False
            await conn.execute(
                """UPDATE thread SET active_run_id = NULL,
                       "values" = CASE WHEN %s THEN %s ELSE "values" END,
                       interrupts = coalesce(%s, interrupts), error = %s
                   WHERE thread_id = %s AND (active_run_id = %s OR active_run_id IS NULL)""",
                (values is not None, jsonb(values), jsonb(interrupts) if interrupts is not None else None,
                 jsonb(error) if error is not None else None, thread_id, run_id),
            )
            await self._settle_thread(conn, thread_id, thread_status)
            return True

    async def release(self, run_id: UUID, thread_id: UUID, worker_id: str) -> None:
        """Give a claimed run back to the queue (shutdown); another worker resumes it."""
        async with self.pool.connection() as conn, conn.transaction():
            await self._lock_thread(conn, thread_id)
            released = await self.one(
                """UPDATE run SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
                   WHERE run_id = %s AND status = 'running' AND lease_owner = %s RETURNING 1""",
                (run_id, worker_id),
                conn,
            )
            if released is None:  # the lease had passed to another worker already
                return
            await conn.execute(
                "UPDATE thread SET active_run_id = NULL WHERE thread_id = %s AND active_run_id = %s", (thread_id, run_id)
            )

    async def sweep_expired(self, max_attempts: int) -> list[UUID]:
        """Runs whose worker stopped renewing its lease go back to the queue, to resume from their
        last checkpoint; a run that already had `max_attempts` ends in error instead."""
        async with self.pool.connection() as conn, conn.transaction():
            expired = "status = 'running' AND lease_expires_at < now()"
            threads = await self.all(
                f"""SELECT thread_id FROM thread WHERE thread_id IN (SELECT thread_id FROM run WHERE {expired})
                    ORDER BY thread_id FOR UPDATE SKIP LOCKED""",
                conn=conn,
            )
            if not threads:
                return []
            lost = await self.all(
                f"SELECT run_id, thread_id, attempt FROM run WHERE thread_id = ANY(%s) AND {expired} FOR UPDATE",
                ([t["thread_id"] for t in threads],),
                conn,
            )
            if not lost:
                return []
            retry = [r["run_id"] for r in lost if r["attempt"] < max_attempts]
            failed = [r["run_id"] for r in lost if r["attempt"] >= max_attempts]
            await conn.execute(
                """UPDATE run SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
                   WHERE run_id = ANY(%s)""",
                (retry,),
            )
            error = {"error": "WorkerLost", "message": f"the run's worker was lost {max_attempts} times; giving up"}
            await conn.execute(
                """UPDATE run SET status = 'error', output = %s, lease_owner = NULL, lease_expires_at = NULL,
                       updated_at = now() WHERE run_id = ANY(%s)""",
                (jsonb({"__error__": error}), failed),
            )
            await conn.execute(
                """UPDATE thread SET active_run_id = NULL, error = CASE WHEN active_run_id = ANY(%s) THEN %s ELSE error END
                   WHERE active_run_id = ANY(%s)""",
                (failed, jsonb(error), [r["run_id"] for r in lost]),
            )
            for tid in {r["thread_id"] for r in lost if r["run_id"] in failed}:
                await self._settle_thread(conn, tid, "error")
            return [r["run_id"] for r in lost]

    async def output(self, run_id: UUID) -> dict | None:
        return await self.one("SELECT status, output FROM run WHERE run_id = %s", (run_id,))
