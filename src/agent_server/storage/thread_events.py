"""The per-thread log of protocol events (thread event streams)."""
from __future__ import annotations

from uuid import UUID

import psycopg

from .base import Repository
from .queue import HELD, lease


class ThreadEventRepo(Repository):
    async def append(self, run: dict, event: bytes, *, held: bool = True) -> int | None:
        """Number an event of a run's execution after the thread's last and store it; its number, or None when
        `held` and that execution no longer holds the run (a stale attempt keeps quiet). One run of a thread
        executes at a time; should two race for a number, the loser takes the next."""
        where = f"WHERE EXISTS (SELECT 1 FROM run WHERE {HELD})" if held else ""
        for _ in range(3):
            try:
                return await self.scalar(
                    f"""INSERT INTO thread_event (thread_id, seq, run_id, event)
                        SELECT %(thread)s,
                               coalesce((SELECT max(seq) FROM thread_event WHERE thread_id = %(thread)s), 0) + 1,
                               %(run)s, %(event)s {where}
                        RETURNING seq""",
                    {**lease(run), "event": event},
                )
            except psycopg.errors.UniqueViolation:
                continue
        raise RuntimeError(f"thread {run['thread_id']}: could not number an event")

    async def after(self, thread_id: UUID, seq: int) -> list[dict]:
        return await self.all(
            "SELECT seq, run_id, event FROM thread_event WHERE thread_id = %s AND seq > %s ORDER BY seq",
            (thread_id, seq),
        )

    async def last_seq(self, thread_id: UUID) -> int:
        return await self.scalar("SELECT coalesce(max(seq), 0) FROM thread_event WHERE thread_id = %s", (thread_id,))

    async def watch(self, thread_id: UUID) -> list[UUID]:
        """Someone follows this thread's event stream: its runs log their events from now on. Returns the runs
        executing on it already (they were claimed unfollowed: their workers are to be told)."""
        rows = await self.all(
            """WITH marked AS (
                   INSERT INTO thread_event_reader (thread_id) VALUES (%(thread)s)
                   ON CONFLICT (thread_id) DO UPDATE SET seen_at = now()
               )
               SELECT run_id FROM run WHERE thread_id = %(thread)s AND status = 'running'""",
            {"thread": thread_id},
        )
        return [r["run_id"] for r in rows]

    async def prune(self, older_than_seconds: float) -> None:
        for table, column in (("thread_event", "created_at"), ("thread_event_reader", "seen_at")):
            await self.execute(
                f"DELETE FROM {table} WHERE {column} < now() - %s * interval '1 second'", (older_than_seconds,)
            )
