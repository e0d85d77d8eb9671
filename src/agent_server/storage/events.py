"""Stored stream events of resumable runs."""
from __future__ import annotations

from uuid import UUID

from .base import Repository
from .group import GroupCommit


class RunEventRepo(Repository):
    """Appends are committed in groups: the events every run of this process hands in while writes are in
    flight go together in the next statement (a thousand streaming runs, a statement per round trip rather
    than one per event). Up to 3 statements in flight: a run waits for less than a whole statement before its
    own goes (a run's own events are never in two at once: its writer waits for each append), and it measured
    lower delays to the streams' followers than one at a time (bench/RESULTS.md, many open streams)."""

    def __init__(self, pool) -> None:
        super().__init__(pool)
        self._group: GroupCommit[tuple[dict, list[tuple[int, str, bytes]]], bool] = GroupCommit(
            self._store, size=lambda item: sum(len(data) + 100 for _, _, data in item[1]), in_flight=3)

    async def append(self, run: dict, events: list[tuple[int, str, bytes]]) -> bool:
        """Store events (seq, event, data) of a claimed run's execution; False (nothing stored) when that
        execution no longer holds the run: a stale attempt's events never mix with the newer one's."""
        return await self._group.submit((run, events))

    async def _store(self, group: list[tuple[dict, list]]) -> list[bool]:
        """One statement; for each, whether its execution (run, attempt) still holds the run (only those
        executions' events are stored)."""
        rows = [(run, *event) for run, events in group for event in events]
        held = await self.all(
            """WITH e AS (
                   SELECT * FROM unnest(%(runs)b::uuid[], %(owners)b::text[], %(attempts)b::integer[],
                                        %(seqs)b::integer[], %(events)b::text[], %(data)b::bytea[])
                       AS e(run_id, owner, attempt, seq, event, data)
               ), held AS (  -- queue.HELD, row by row: each execution is fenced by its own lease
                   SELECT e.* FROM e JOIN run r USING (run_id)
                   WHERE r.status = 'running' AND r.lease_owner = e.owner AND r.attempt = e.attempt
               ), stored AS (
                   INSERT INTO run_event (run_id, seq, event, data) SELECT run_id, seq, event, data FROM held
                   ON CONFLICT DO NOTHING
               )
               SELECT DISTINCT run_id, attempt FROM held""",
            {"runs": [r[0]["run_id"] for r in rows], "owners": [r[0]["lease_owner"] for r in rows],
             "attempts": [r[0]["attempt"] for r in rows], "seqs": [r[1] for r in rows],
             "events": [r[2] for r in rows], "data": [r[3] for r in rows]},
        )
        held = {(r["run_id"], r["attempt"]) for r in held}
        return [(run["run_id"], run["attempt"]) in held for run, _ in group]

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
