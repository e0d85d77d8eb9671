"""Stored stream events of resumable runs."""
from __future__ import annotations

from uuid import UUID

from .base import Repository


class RunEventRepo(Repository):
    async def append(self, run_id: UUID, seq: int, event: str, data: bytes) -> None:
        await self.execute(
            "INSERT INTO run_event (run_id, seq, event, data) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (run_id, seq, event, data),
        )

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
