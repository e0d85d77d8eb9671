"""Stored stream events of resumable runs."""
from __future__ import annotations

from uuid import UUID

from .base import Repository
from .queue import HELD, lease


class RunEventRepo(Repository):
    async def append(self, run: dict, events: list[tuple[int, str, bytes]]) -> bool:
        """Store events (seq, event, data) of a claimed run's execution, in one statement; False (nothing
        stored) when that execution no longer holds the run: a stale attempt's events never mix with the
        newer one's."""
        return await self.scalar(
            f"""WITH stored AS (
                    INSERT INTO run_event (run_id, seq, event, data)
                    SELECT %(run)s, e.seq, e.event, e.data
                    FROM unnest(%(seqs)s::integer[], %(events)s::text[], %(data)s::bytea[]) AS e(seq, event, data)
                    WHERE EXISTS (SELECT 1 FROM run WHERE {HELD})
                    ON CONFLICT DO NOTHING RETURNING 1)
                SELECT EXISTS (SELECT 1 FROM run WHERE {HELD})""",
            {**lease(run), "seqs": [e[0] for e in events], "events": [e[1] for e in events], "data": [e[2] for e in events]},
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
