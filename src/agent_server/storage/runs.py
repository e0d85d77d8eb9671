"""Runs: creation with multitask strategies, cancellation, reads. The queue protocol (claim, lease,
finish, release, sweep) is in queue.py."""
from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from psycopg import AsyncConnection

from ..errors import Conflict, NotFound
from ..status import CANCEL_ACTIONS, INFLIGHT, RunStatus, cancel_error
from . import webhooks
from .assistants import UNCHANGED, StaleAssistant
from .base import ANYONE, Filter, Repository, jsonb
from .threads import EXPIRES, ttl_params

COLUMNS = [
    "run_id", "thread_id", "assistant_id", "created_at", "updated_at", "status", "metadata", "kwargs",
    "multitask_strategy",
]
PUBLIC = ", ".join(f"run.{c}" for c in COLUMNS) + ", NULL AS langsmith_session_name"
SELECTABLE = [*COLUMNS, "langsmith_session_name"]  # what a run listing may `select`


def _columns(select: list[str] | None) -> str:
    """The public columns, or those of them in `select` (names already checked against SELECTABLE)."""
    if not select:
        return PUBLIC
    return ", ".join(
        "NULL AS langsmith_session_name" if c == "langsmith_session_name" else f"run.{c}"
        for c in SELECTABLE if c in select
    )


@dataclass
class NewRun:
    run_id: UUID
    thread_id: UUID
    assistant_id: UUID
    graph_id: str
    kwargs: dict
    # The run's metadata: its assistant's, then its thread's (a run on a thread), then `metadata` (the run's own
    # keys, on top), as the official server merges them; kwargs' config.metadata is the same.
    metadata: dict = field(default_factory=dict)
    assistant_metadata: dict = field(default_factory=dict)
    multitask_strategy: str = "enqueue"
    after_seconds: float = 0
    if_not_exists: str = "reject"
    ephemeral: bool = False  # a stateless run's own thread, deleted with the run
    owner: dict = field(default_factory=dict)  # metadata a thread this run creates gets (custom auth's filter)
    ttl: dict | None = None  # the TTL a thread this run creates gets (checkpointer.ttl's default)
    # Made from a cached assistant (assistants.seen): created only if that is still the latest, else StaleAssistant
    assistant_seen: dict | None = None


@dataclass
class Created:
    run: dict
    cancelled: list[UUID]  # in-flight runs ended (pending) or asked to stop (running) by interrupt/rollback
    running: list[UUID]  # those of them a worker executes: it must be signalled
    started: dict | None = None  # the run as claimed (queue.py claim_next's row), when `create` also started it


CLAIMED = "EXISTS (SELECT 1 FROM run WHERE run_id = %s AND status = 'running')"  # by the statement before


def watched(run: str) -> str:
    """SQL: whether anyone follows the thread of `run` (a table alias) on its event stream (worker/executor.py)."""
    return f"EXISTS (SELECT 1 FROM thread_event_reader r WHERE r.thread_id = {run}.thread_id)"


def _created(row: dict, start: dict | None) -> Created:
    """A run queued by one statement; when it was also started, the answer shows it as it was queued."""
    if not start:
        return Created(row, [], [])
    return Created({**{c: row[c] for c in COLUMNS}, "status": "pending", "langsmith_session_name": None}, [], [], row)


def _visible(filter: Filter) -> tuple[str, dict]:
    """A run is visible to a caller when its thread is."""
    if not filter:
        return "true", {}
    condition, params = filter.sql("f", {"thread_id", "status"})
    return f"EXISTS (SELECT 1 FROM thread f WHERE f.thread_id = run.thread_id AND {condition})", params


async def lock_thread(conn, thread_id: UUID) -> bool:
    """Lock a thread before touching its runs (the one lock order: no deadlock). False: no such thread."""
    cur = await conn.execute("SELECT 1 FROM thread WHERE thread_id = %s FOR UPDATE", (thread_id,))
    return await cur.fetchone() is not None


def settled(running: str = "active_run_id IS NOT NULL") -> str:
    """SQL for a thread's status once its runs have moved: busy while one runs (`running`, on the row before
    the UPDATE) or waits, else the last run's outcome (the `outcome` parameter), or idle."""
    return f"""CASE WHEN {running}
                        OR EXISTS (SELECT 1 FROM run WHERE run.thread_id = thread.thread_id AND status = 'pending')
                    THEN 'busy'
                    ELSE coalesce(%(outcome)s, CASE WHEN status = 'busy' THEN 'idle' ELSE status END) END"""


async def settle_thread(conn, thread_id: UUID, outcome: str | None = None) -> None:
    """A thread is busy while it has runs in flight; otherwise it takes the last run's outcome."""
    await conn.execute(
        f"UPDATE thread SET updated_at = now(), status = {settled()} WHERE thread_id = %(thread)s",
        {"outcome": outcome, "thread": thread_id},
    )


class RunRepo(Repository):
    async def create(
        self, new: NewRun, conn: AsyncConnection | None = None, start: dict | None = None, then=None
    ) -> Created:
        """Queue a run. The run row and the thread's status change commit together: in the transaction of
        `conn` when given (a cron firing queues its run where it claims the cron), as a savepoint of it.

        `start` (a lease: worker, lease seconds) asks for the run to be claimed by that worker in the same
        statement, as claim_next would, when nothing is ahead of it (a new or idle thread): then `started`
        holds it as claimed, and the answer still shows it as queued (what the official server answers). `then`:
        a read to pipeline after the statement that claims it (Repository.one_then), e.g. its thread's latest
        checkpoint (checkpointer.LatestCheckpoint)."""
        params = {
            "run": new.run_id, "thread": new.thread_id, "assistant": new.assistant_id,
            "metadata": jsonb(new.metadata), "under": jsonb(new.assistant_metadata), "kwargs": jsonb(new.kwargs),
            "strategy": new.multitask_strategy,
            "after": new.after_seconds, "graph_id": new.graph_id, "owner": jsonb(new.owner), **(start or {}),
            **(new.assistant_seen or {}),
        }
        unchanged = UNCHANGED if new.assistant_seen else "true"

        def insert_run(claimed: bool, between: str = "") -> str:
            """The run, on the row of its thread's statement (`thread_row`): none, no run. `claimed`: claimed by
            `start`'s worker at once (the columns claim_next sets, and its answer). `between`: the thread's metadata,
            which goes between the assistant's and the run's own."""
            md = f"%(under)s::jsonb || {between + ' || ' if between else ''}%(metadata)s::jsonb"
            values = f"""%(run)s, %(thread)s, %(assistant)s, m.md, jsonb_set(%(kwargs)s, '{{config,metadata}}', m.md),
                %(strategy)s"""
            rows = f"FROM thread_row, LATERAL (SELECT {md} AS md) m"
            if not claimed:
                return f"""INSERT INTO run (run_id, thread_id, assistant_id, metadata, kwargs, multitask_strategy, available_at)
                    SELECT {values}, now() + %(after)s * interval '1 second' {rows}
                    RETURNING {PUBLIC}"""
            return f"""INSERT INTO run (run_id, thread_id, assistant_id, metadata, kwargs, multitask_strategy,
                                        status, attempt, lease_owner, lease_expires_at, started_at)
                SELECT {values}, 'running', 1, %(worker)s, now() + %(lease)s * interval '1 second', now() {rows}
                RETURNING run.*, {watched("run")} AS thread_watched"""

        thread_metadata = (
            "jsonb_build_object('graph_id', %(graph_id)s::text, 'assistant_id', %(assistant)s::text) || %(owner)s"
        )
        if new.ephemeral:  # a thread of its own: nothing to wait for or cancel, so one statement
            row = await self.one(
                f"""WITH thread_row AS (
                        INSERT INTO thread (thread_id, ephemeral, status, metadata, active_run_id)
                        SELECT %(thread)s, true, 'busy', {thread_metadata}, {"%(run)s" if start else "NULL"}
                        WHERE {unchanged}
                        RETURNING thread_id)
                    {insert_run(bool(start))}""",
                params,
                conn,
            )
            if row is None:
                raise StaleAssistant(new.assistant_id)
            return _created(row, start)
        # The thread keeps the config of its last run's assistant (the run's own top-level keys, not its
        # configurable), as the official server does: state reads and updates build factory graphs with it.
        def queue_on_thread(only_if_idle: str = "", claimed: bool = False) -> str:
            active = ", active_run_id = %(run)s" if claimed else ""
            return f"""WITH thread_row AS (
                UPDATE thread SET status = 'busy', updated_at = now(), metadata = metadata || {thread_metadata}{active},
                    config = (coalesce(%(kwargs)s::jsonb->'config', '{{}}') - 'metadata' - 'configurable') || jsonb_build_object(
                        'configurable', coalesce(
                            (SELECT a.config->'configurable' FROM assistant a WHERE a.assistant_id = %(assistant)s),
                            '{{}}'::jsonb))
                WHERE thread_id = %(thread)s {only_if_idle} RETURNING thread_id, metadata)
            {insert_run(claimed, "thread_row.metadata")}"""
        if conn is None:
            # A thread that is not busy has no run in flight (busy is set with the first, kept while any is
            # pending or running, under the thread's row lock): nothing for the multitask strategy to decide,
            # so one statement. The UPDATE's row lock stands for lock_thread; a thread busy (or missing) meanwhile
            # is checked again on its latest row, and then takes the way below.
            row = await self.one_then(
                queue_on_thread(f"AND status <> 'busy' AND active_run_id IS NULL AND {unchanged}", bool(start)), params,
                then if start else None, CLAIMED, (new.run_id,),
            )
            if row is not None:
                return _created(row, start)
        async with self.transaction(conn) as conn:
            if new.if_not_exists == "create":
                await conn.execute(
                    f"""INSERT INTO thread (thread_id, metadata, ttl_strategy, ttl_minutes, expires_at)
                        VALUES (%(thread)s, %(owner)s, %(ttl_strategy)s, %(ttl_minutes)s, {EXPIRES})
                        ON CONFLICT DO NOTHING""",
                    {**params, **ttl_params(new.ttl)},
                )
            if not await lock_thread(conn, new.thread_id):
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
                    if new.assistant_seen and not await self.scalar(f"SELECT {UNCHANGED}", params, conn):
                        raise StaleAssistant(new.assistant_id)  # gone, say: that answer, not this one
                    raise Conflict("Thread is already running a task. Wait for it to finish or choose a different multitask strategy.")
                if strategy in ("interrupt", "rollback"):
                    cancelled = [r["run_id"] for r in inflight]
                    running = await self._cancel(conn, new.thread_id, cancelled, strategy)
            row = await self.one(queue_on_thread(f"AND {unchanged}"), params, conn)
            if row is None:  # undoes the cancellations above
                raise StaleAssistant(new.assistant_id)
            return Created(row, cancelled, running)

    async def _cancel(self, conn, thread_id: UUID, run_ids: list[UUID], action: str) -> list[UUID]:
        """Pending runs end at once; running ones are flagged for their worker. Returns the running ones."""
        pending = await self.all(
            "SELECT run_id FROM run WHERE thread_id = %s AND run_id = ANY(%s) AND status = 'pending'", (thread_id, run_ids), conn
        )
        await webhooks.record(conn, [r["run_id"] for r in pending], RunStatus.INTERRUPTED, cancel_error(action))
        if action == "rollback":
            ended = await conn.execute(
                "DELETE FROM run WHERE thread_id = %s AND run_id = ANY(%s) AND status = 'pending'", (thread_id, run_ids)
            )
        else:
            ended = await conn.execute(
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
        if ended.rowcount:  # as a worker leaves the thread when it stops a running run (worker/executor.py _finish)
            await conn.execute("UPDATE thread SET error = %s WHERE thread_id = %s", (jsonb(cancel_error(action)), thread_id))
            await settle_thread(conn, thread_id, CANCEL_ACTIONS[action][0])
        else:
            await settle_thread(conn, thread_id)
        return [r["run_id"] for r in rows]

    async def cancel(
        self, thread_id: UUID | None, run_ids: list[UUID] | None, action: str, status: str | None = None,
        filter: Filter = ANYONE,
    ) -> tuple[list[UUID], list[UUID]]:
        """Cancel in-flight runs by ids (on a thread), by thread, or by status.

        Returns the runs matched, and the running ones, whose workers must be signalled."""
        visible, params = _visible(filter)
        selection = f"""FROM run WHERE (%(thread)s::uuid IS NULL OR thread_id = %(thread)s)
                          AND (%(ids)s::uuid[] IS NULL OR run_id = ANY(%(ids)s))
                          AND status = ANY(%(statuses)s) AND {visible}"""
        params.update(thread=thread_id, ids=run_ids, statuses=[status] if status else list(INFLIGHT))
        async with self.pool.connection() as conn, conn.transaction():
            locked = await self._lock_threads(conn, f"SELECT thread_id {selection}", params)
            # only runs of the threads locked: a run queued since on another thread would be locked before its thread
            rows = await self.all(
                f"SELECT run_id, thread_id {selection} AND thread_id = ANY(%(locked)s) ORDER BY thread_id, run_id FOR UPDATE",
                {**params, "locked": locked},
                conn,
            )
            running: list[UUID] = []
            by_thread: dict[UUID, list[UUID]] = {}
            for r in rows:
                by_thread.setdefault(r["thread_id"], []).append(r["run_id"])
            for tid, ids in by_thread.items():
                running += await self._cancel(conn, tid, ids, action)
            return [r["run_id"] for r in rows], running

    async def _lock_threads(self, conn, thread_ids_sql: str, params) -> list[UUID]:
        """Lock threads before their runs, in one order, as claim and finish do: no deadlock. Returns them."""
        rows = await self.all(
            f"SELECT thread_id FROM thread WHERE thread_id IN ({thread_ids_sql}) ORDER BY thread_id FOR UPDATE",
            params,
            conn,
        )
        return [r["thread_id"] for r in rows]

    async def queue_stats(self) -> dict[str, float]:
        """Runs by status; the queue: how many pending runs are due now (not delayed), and how long the
        oldest of them has waited (seconds)."""
        rows = await self.all("SELECT status, count(*) AS n FROM run GROUP BY status")
        stats = {f"runs_{status}": 0.0 for status in RunStatus}
        stats.update({f"runs_{r['status']}": float(r["n"]) for r in rows})
        queue = await self.one(
            """SELECT count(*)::float AS queue_depth,
                      coalesce(extract(epoch FROM now() - min(available_at)), 0)::float AS queue_oldest_pending_seconds
               FROM run WHERE status = 'pending' AND available_at <= now()"""
        )
        return {**stats, **queue}

    async def queue(self, *, limit: int, offset: int, filter: Filter = ANYONE) -> dict:
        """The runs in flight a caller may see, in queue order (running ones, longest running first, then
        pending ones as workers will claim them), each with its ages measured by PostgreSQL's clock and
        the worker holding its lease; and how many are pending and running in all."""
        visible, params = _visible(filter)
        inflight = f"run.status IN ('pending', 'running') AND {visible}"
        async with self.pool.connection() as conn:
            totals = await self.one(
                f"""SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
                           count(*) FILTER (WHERE status = 'running') AS running
                    FROM run WHERE {inflight}""",
                params,
                conn,
            )
            runs = await self.all(
                f"""SELECT run.run_id, run.thread_id, run.assistant_id, a.graph_id, run.status, run.attempt,
                           run.lease_owner AS worker, run.created_at, run.started_at, run.available_at,
                           run.lease_expires_at,
                           extract(epoch FROM now() - run.created_at)::float AS age_seconds,
                           CASE WHEN run.status = 'running'
                                THEN extract(epoch FROM now() - run.started_at)::float END AS running_seconds,
                           CASE WHEN run.status = 'pending'
                                THEN greatest(extract(epoch FROM run.available_at - now()), 0)::float END AS due_in_seconds
                    FROM run LEFT JOIN assistant a ON a.assistant_id = run.assistant_id
                    WHERE {inflight}
                    ORDER BY run.status = 'running' DESC, CASE WHEN run.status = 'running' THEN run.started_at END,
                             run.available_at, run.created_at, run.run_id
                    LIMIT %(limit)s OFFSET %(offset)s""",
                {**params, "limit": limit, "offset": offset},
                conn,
            )
        return {**totals, "runs": runs}

    async def active_run(self, thread_id: UUID) -> UUID | None:
        return await self.scalar("SELECT active_run_id FROM thread WHERE thread_id = %s", (thread_id,))

    async def count_existing(self, run_ids: list[UUID]) -> int:
        return await self.scalar("SELECT count(*) FROM run WHERE run_id = ANY(%s)", (run_ids,))

    async def get(self, run_id: UUID, thread_id: UUID | None = None, filter: Filter = ANYONE) -> dict:
        visible, params = _visible(filter)
        row = await self.one(
            f"""SELECT {PUBLIC} FROM run WHERE run_id = %(run)s AND (%(thread)s::uuid IS NULL OR thread_id = %(thread)s)
                AND {visible}""",
            {**params, "run": run_id, "thread": thread_id},
        )
        if row is None:
            raise NotFound(f"Run {run_id} not found")
        return row

    async def list(
        self, thread_id: UUID, *, status: str | None, limit: int, offset: int, select: list[str] | None = None,
        filter: Filter = ANYONE,
    ) -> list[dict]:
        visible, params = _visible(filter)
        return await self.all(
            f"""SELECT {_columns(select)} FROM run WHERE thread_id = %(thread)s AND (%(status)s::text IS NULL OR status = %(status)s)
                AND {visible} ORDER BY created_at DESC LIMIT %(limit)s OFFSET %(offset)s""",
            {**params, "thread": thread_id, "status": status, "limit": limit, "offset": offset},
        )

    async def delete(self, run_id: UUID, thread_id: UUID, filter: Filter = ANYONE) -> None:
        visible, params = _visible(filter)
        async with self.pool.connection() as conn, conn.transaction():
            await lock_thread(conn, thread_id)
            row = await self.one(
                f"SELECT status FROM run WHERE run_id = %(run)s AND thread_id = %(thread)s AND {visible} FOR UPDATE",
                {**params, "run": run_id, "thread": thread_id},
                conn,
            )
            if row is None:
                raise NotFound(f"Run {run_id} not found")
            if row["status"] == RunStatus.RUNNING:
                raise Conflict(f"Run {run_id} is running; cancel it first")
            await conn.execute("DELETE FROM run WHERE run_id = %s", (run_id,))
            await settle_thread(conn, thread_id)

    async def output(self, run_id: UUID) -> dict | None:
        return await self.one("SELECT status, output FROM run WHERE run_id = %s", (run_id,))
