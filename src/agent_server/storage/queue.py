"""The queue protocol: claim, heartbeat, finish, release, sweep.

A claim leases a run to one worker for one attempt. Every later statement about that execution
names the worker AND the attempt, so a stale execution (a worker that lost its lease during a
database blip and then re-claimed the run) can never end, release or renew the newer one.
Row locks are taken threads first, then runs, each in (thread_id, run_id) order: no deadlocks."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import NamedTuple
from uuid import UUID

from ..status import CANCEL_ACTIONS, RunStatus, cancel_error
from . import webhooks
from .savers import SqlCheckpointOps
from .base import Repository, jsonb
from .runs import lock_thread, settled, watched

log = logging.getLogger(__name__)

MAX_FAILURES = 3  # lost leases / database failures after which a run ends in error
# After a failure a run waits before its next try: 2 s, 4 s, ... (a run that kills its worker must not
# spin). In an UPDATE that counts the failure, `failures` is still the count before it.
BACKOFF = "least(power(2, failures + 1), 60) * interval '1 second'"
HELD = "run_id = %(run)s AND status = 'running' AND lease_owner = %(worker)s AND attempt = %(attempt)s"


def lease(run: dict) -> dict:
    """The parameters that identify one execution of a claimed run."""
    return {"run": run["run_id"], "thread": run["thread_id"], "worker": run["lease_owner"], "attempt": run["attempt"]}


def gave_up(failures: int) -> dict:
    return {
        "error": "RunFailedRepeatedly",
        "message": f"the run was cut off {failures} times (its worker was lost or its database unavailable); giving up",
    }


class Held(NamedTuple):
    """What a heartbeat says of an execution its worker still holds."""
    cancel: str | None  # the cancel asked of the run (interrupt, rollback), if any
    watched: bool  # someone follows its thread's event stream: its events are to be logged


@dataclass
class Swept:
    requeued: list[UUID] = field(default_factory=list)
    # runs ended by the sweep: (run_id, status, output, cancel action or None)
    ended: list[tuple[UUID, RunStatus, object, str | None]] = field(default_factory=list)


class QueueRepo(Repository):
    def __init__(self, pool, checkpoints=None) -> None:
        super().__init__(pool)
        self.checkpoints = checkpoints or SqlCheckpointOps()  # storage/savers.py: SQL, or the saver's API

    async def claim(self, worker_id: str, limit: int, lease_seconds: float, executing: list[UUID]) -> list[dict]:
        """Start up to `limit` runs (see claim_next)."""
        return (await self.claim_next(worker_id, limit, lease_seconds, executing))[0]

    async def claim_next(
        self, worker_id: str, limit: int, lease_seconds: float, executing: list[UUID]
    ) -> tuple[list[dict], float | None]:
        """Start up to `limit` runs, the oldest pending run of each idle thread; never one this
        worker still executes (a stale execution of it may be unwinding here). With them, the seconds until
        the earliest delayed run becomes available (None when none waits), so that an idle worker knows
        how long to sleep without asking again. Runs available now but waiting behind a busy thread are
        not counted there: the run ahead of them wakes the queue when it ends.

        The thread row is locked (SKIP LOCKED) and re-checked to have no active run, so at most one
        run per thread is ever running, whatever the number of workers."""
        rows = await self.all(
            f"""WITH candidate AS (
                   SELECT DISTINCT ON (thread_id) run_id, thread_id, available_at
                   FROM run WHERE status = 'pending'
                   ORDER BY thread_id, created_at
               ), ready AS (
                   SELECT t.thread_id, c.run_id FROM thread t JOIN candidate c USING (thread_id)
                   WHERE t.active_run_id IS NULL AND c.available_at <= now() AND c.run_id <> ALL(%(executing)s)
                   ORDER BY c.available_at LIMIT %(limit)s
                   FOR UPDATE OF t SKIP LOCKED
               ), started AS (
                   -- re-checked on the latest row: a run cancelled or deleted meanwhile is not started
                   UPDATE run SET status = 'running', attempt = attempt + 1, lease_owner = %(worker)s,
                       lease_expires_at = now() + %(lease)s * interval '1 second', updated_at = now(), started_at = now()
                   FROM ready WHERE run.run_id = ready.run_id AND run.status = 'pending'
                   RETURNING run.*
               ), taken AS (
                   UPDATE thread SET active_run_id = started.run_id, status = 'busy', updated_at = now()
                   FROM started WHERE thread.thread_id = started.thread_id
               )
               -- and whether anyone follows the thread's event stream (worker/executor.py _ThreadLog)
               SELECT started.*, {watched("started")} AS thread_watched, NULL::float AS next_in
               FROM started
               UNION ALL  -- last, a row of its own: when the next delayed run is due
               SELECT (NULL::run).*, NULL, (SELECT extract(epoch FROM min(available_at) - now())::float FROM run
                                            WHERE status = 'pending' AND available_at > now())""",
            {"limit": limit, "worker": worker_id, "lease": lease_seconds, "executing": executing},
        )
        claimed = [row for row in rows if row["run_id"] is not None]
        for run in claimed:
            del run["next_in"]
        return claimed, next(row["next_in"] for row in rows if row["run_id"] is None)

    async def heartbeat(self, worker_id: str, attempts: dict[UUID, int], lease_seconds: float) -> dict[UUID, Held]:
        """Renew the leases of these executions (run id → attempt); returns, for each one this worker
        still holds, the cancel asked of it (or None) and whether someone follows its thread's events."""
        rows = await self.all(
            f"""WITH mine AS (
                   SELECT run.run_id FROM run
                   JOIN unnest(%(ids)s::uuid[], %(attempts)s::int[]) AS l(run_id, attempt) USING (run_id)
                   WHERE run.attempt = l.attempt AND run.lease_owner = %(worker)s AND run.status = 'running'
                   ORDER BY run.thread_id, run.run_id FOR UPDATE OF run
               )
               UPDATE run SET lease_expires_at = now() + %(lease)s * interval '1 second'
               FROM mine WHERE run.run_id = mine.run_id
               RETURNING run.run_id, run.cancel_action, {watched("run")} AS watched""",
            {"ids": list(attempts), "attempts": list(attempts.values()), "worker": worker_id, "lease": lease_seconds},
        )
        return {r["run_id"]: Held(r["cancel_action"], r["watched"]) for r in rows}

    async def finish(
        self,
        run: dict,
        *,
        status: RunStatus,
        output,
        thread_status: str | None,
        values,
        interrupts: dict | None,
        error=None,
        rollback: bool = False,
        delete_thread: bool = False,
    ) -> bool:
        """End an execution, free its thread, record the thread's new state and queue the run's webhook,
        in one transaction.

        False when this execution no longer holds the run (its lease passed to another)."""
        params = {**lease(run), "status": status, "output": jsonb(output)}
        held = f"SELECT 1 FROM run WHERE {HELD}"
        async with self.pool.connection() as conn, conn.transaction():
            # The thread's lock first (the one lock order); the statements after it see every run queued before.
            await lock_thread(conn, run["thread_id"])
            if run["kwargs"].get("webhook"):  # else nothing to queue (and no statement for it)
                if await self.one(f"{held} FOR UPDATE", params, conn) is None:
                    return False
                await webhooks.record(conn, [run["run_id"]], status, error, values=values)  # while the run's row is
            if delete_thread:  # a temporary thread goes, and its run with it
                deleted = await conn.execute(
                    f"DELETE FROM thread WHERE thread_id = %(thread)s AND EXISTS ({held})", params
                )
                return deleted.rowcount > 0
            # the run's row and its thread's in one statement, only while this execution holds the run
            ended = f"DELETE FROM run WHERE {HELD} RETURNING run_id" if rollback else f"""
                UPDATE run SET status = %(status)s, output = %(output)s, updated_at = now(),
                    lease_owner = NULL, lease_expires_at = NULL WHERE {HELD} RETURNING run_id"""
            return await _free_thread(conn, run["thread_id"], run["run_id"], thread_status, error=error,
                                      values=values, interrupts=interrupts, first=(ended, params))

    async def release(self, run: dict, *, retry: bool = False, unstarted: bool = False) -> RunStatus | None:
        """Give a run back to the queue; another worker resumes it from its last checkpoint.

        A graceful hand-back (shutdown) is free; `retry` (our database failed) counts as a failure
        and waits a backoff; past MAX_FAILURES the run ends in error. `unstarted`: this claim never executed
        the run, so the attempt it counted is taken back. Returns the run's new status, None when this
        execution no longer held it."""
        async with self.pool.connection() as conn, conn.transaction():
            await lock_thread(conn, run["thread_id"])
            held = await self.one(f"SELECT cancel_action FROM run WHERE {HELD} FOR UPDATE", lease(run), conn)
            if held is None:
                return None
            if held["cancel_action"]:  # cancelled meanwhile (during a drain, say): end it as asked
                await _end_cancelled(conn, run["run_id"], run["thread_id"], held["cancel_action"], self.checkpoints)
                return RunStatus.INTERRUPTED
            row = await self.one(
                f"""UPDATE run SET failures = failures + %(retry)s::int, updated_at = now(),
                        lease_owner = NULL, lease_expires_at = NULL, attempt = attempt - %(unstarted)s::int,
                        status = CASE WHEN failures + %(retry)s::int >= {MAX_FAILURES} THEN 'error' ELSE 'pending' END,
                        available_at = now() + CASE WHEN %(retry)s THEN {BACKOFF}
                                                    ELSE interval '0' END
                    WHERE run_id = %(run)s RETURNING status, failures""",
                {**lease(run), "retry": retry, "unstarted": unstarted},
                conn,
            )
            status = RunStatus(row["status"])
            if status == RunStatus.ERROR:
                error = gave_up(row["failures"])
                await conn.execute("UPDATE run SET output = %s WHERE run_id = %s", (jsonb({"__error__": error}), run["run_id"]))
                await _free_thread(conn, run["thread_id"], run["run_id"], "error", error=error)
                await webhooks.record(conn, [run["run_id"]], status, error)
            else:
                await _free_thread(conn, run["thread_id"], run["run_id"])
            return status

    async def sweep(self) -> Swept:
        """Runs whose worker stopped renewing its lease: a cancel asked of them ends them as asked;
        otherwise they go back to the queue (a lost lease counts as a failure) or, after
        MAX_FAILURES, end in error."""
        swept = Swept()
        async with self.pool.connection() as conn, conn.transaction():
            expired = "status = 'running' AND lease_expires_at < now()"
            threads = await self.all(
                f"""SELECT thread_id FROM thread WHERE thread_id IN (SELECT thread_id FROM run WHERE {expired})
                    ORDER BY thread_id FOR UPDATE SKIP LOCKED""",
                conn=conn,
            )
            if not threads:
                return swept
            lost = await self.all(
                f"""SELECT run_id, thread_id, failures, cancel_action FROM run
                    WHERE thread_id = ANY(%s) AND {expired} ORDER BY thread_id, run_id FOR UPDATE""",
                ([t["thread_id"] for t in threads],),
                conn,
            )
            for r in lost:
                run_id, thread_id, action = r["run_id"], r["thread_id"], r["cancel_action"]
                if action:
                    output = await _end_cancelled(conn, run_id, thread_id, action, self.checkpoints)
                    swept.ended.append((run_id, RunStatus.INTERRUPTED, output, action))
                elif r["failures"] + 1 >= MAX_FAILURES:
                    error = gave_up(r["failures"] + 1)
                    await _end(conn, run_id, RunStatus.ERROR, {"__error__": error}, failed=True)
                    await _free_thread(conn, thread_id, run_id, "error", error=error)
                    await webhooks.record(conn, [run_id], RunStatus.ERROR, error)
                    swept.ended.append((run_id, RunStatus.ERROR, {"__error__": error}, None))
                else:
                    await conn.execute(
                        f"""UPDATE run SET status = 'pending', failures = failures + 1, lease_owner = NULL,
                                lease_expires_at = NULL, updated_at = now(), available_at = now() + {BACKOFF}
                            WHERE run_id = %s""",
                        (run_id,),
                    )
                    await _free_thread(conn, thread_id, run_id)
                    swept.requeued.append(run_id)
        return swept

    async def collect_orphan_checkpoints(self) -> int:
        """Delete checkpoints of threads that no longer exist (a run that wrote after its thread was
        deleted, by a worker that died before cleaning up). One worker at a time does it."""
        async with self.pool.connection() as conn, conn.transaction():
            if not await self.scalar("SELECT pg_try_advisory_xact_lock(7311427002)", conn=conn):
                return 0
            return await self.checkpoints.delete_orphans(conn)


async def _end_cancelled(conn, run_id: UUID, thread_id: UUID, action: str, checkpoints):
    """End a run its worker no longer executes as the cancel asked of it: interrupted, or (rollback) gone
    with the checkpoints it wrote. Returns its output: the thread's values."""
    await webhooks.record(conn, [run_id], RunStatus.INTERRUPTED, cancel_error(action))
    cur = await conn.execute('SELECT "values" FROM thread WHERE thread_id = %s', (thread_id,))
    output = (await cur.fetchone())["values"]
    if action == "rollback":
        await checkpoints.delete_run(conn, thread_id, run_id)
        await conn.execute("DELETE FROM run WHERE run_id = %s", (run_id,))
    else:
        await _end(conn, run_id, RunStatus.INTERRUPTED, output)
    await _free_thread(conn, thread_id, run_id, CANCEL_ACTIONS[action][0], error=cancel_error(action))
    return output


async def _end(conn, run_id: UUID, status: RunStatus, output, failed: bool = False) -> None:
    await conn.execute(
        """UPDATE run SET status = %s, output = %s, failures = failures + %s::int, lease_owner = NULL,
               lease_expires_at = NULL, updated_at = now() WHERE run_id = %s""",
        (status, jsonb(output), failed, run_id),
    )


_KEEP = object()


async def _free_thread(
    conn, thread_id: UUID, run_id: UUID, thread_status: str | None = None, *, error=_KEEP, values=None,
    interrupts: dict | None = None, first: tuple[str, dict] | None = None,
) -> bool:
    """The thread no longer runs this run: record what it left (values, interrupts, error) and settle
    its status (busy while another run holds it or more wait, else `thread_status`). One statement: what
    it leaves is written only where the thread was this run's (`mine`, on the row before the UPDATE).

    `first`: a statement (and its parameters) to run in the same one, before; the thread is then freed only
    when it returns a row. Returns whether the thread was updated."""
    mine = "(active_run_id = %(run)s OR active_run_id IS NULL)"
    before, only_if, params = "", "", {}
    if first is not None:
        before, only_if, params = f"WITH first AS ({first[0]}) ", " AND EXISTS (SELECT 1 FROM first)", first[1]
    cur = await conn.execute(
        f"""{before}UPDATE thread SET updated_at = now(), status = {settled(f"NOT {mine}")},
               active_run_id = CASE WHEN {mine} THEN NULL ELSE active_run_id END,
               "values" = CASE WHEN {mine} AND %(set_values)s THEN %(values)s ELSE "values" END,
               interrupts = CASE WHEN {mine} THEN coalesce(%(interrupts)s, interrupts) ELSE interrupts END,
               error = CASE WHEN {mine} AND %(set_error)s THEN %(error)s ELSE error END
           WHERE thread_id = %(thread)s{only_if}""",
        {
            **params, "set_values": values is not None, "values": jsonb(values),
            "interrupts": jsonb(interrupts) if interrupts is not None else None,
            "set_error": error is not _KEEP, "error": jsonb(error) if error not in (None, _KEEP) else None,
            "thread": thread_id, "run": run_id, "outcome": thread_status,
        },
    )
    return cur.rowcount > 0
