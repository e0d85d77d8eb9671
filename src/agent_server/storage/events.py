"""Stored stream events of resumable runs."""
from __future__ import annotations

from uuid import UUID

from .base import Repository
from .queue import HELD, lease


class RunEventRepo(Repository):
    async def append(self, run: dict, seq: int, event: str, data: bytes) -> bool:
        """Store an event of a claimed run's execution; False (nothing stored) when that execution no
        longer holds the run: a stale attempt's events never mix with the newer one's."""
        return await self.one(
            f"""INSERT INTO run_event (run_id, seq, event, data)
                SELECT %(run)s, %(seq)s, %(event)s, %(data)s WHERE EXISTS (SELECT 1 FROM run WHERE {HELD})
                ON CONFLICT DO NOTHING RETURNING 1""",
            {**lease(run), "seq": seq, "event": event, "data": data},
        ) is not None

    async def after(self, run_id: UUID, seq: int) -> list[dict]:
        return await self.all(
            "SELECT seq, event, data FROM run_event WHERE run_id = %s AND seq > %s ORDER BY seq", (run_id, seq)
        )

    async def last_seq(self, run_id: UUID) -> int:
        return await self.scalar("SELECT coalesce(max(seq), -1) FROM run_event WHERE run_id = %s", (run_id,))

    async def prune(self, older_than_seconds: float) -> None:
        await self.execute(
            "DELETE FROM run_event WHERE created_at < now() - %s * interval '1 second'",
            (older_than_seconds,),
        )
