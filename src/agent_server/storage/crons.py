"""Cron jobs, and their claim by the schedulers: each due firing is claimed by one of them only."""
from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import AsyncIterator
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.errors import ForeignKeyViolation

from ..errors import NotFound
from .base import ANYONE, Filter, Repository, jsonb, order_clause, select_clause

COLUMNS = [
    "cron_id", "assistant_id", "thread_id", "user_id", "end_time", "schedule", "timezone", "payload",
    "next_run_date", "metadata", "on_run_completed", "enabled", "created_at", "updated_at",
]
PUBLIC = ", ".join(f'"{c}"' for c in COLUMNS)
SORTABLE = {"cron_id", "assistant_id", "thread_id", "created_at", "updated_at", "next_run_date", "end_time"}
FILTERABLE = {"cron_id", "assistant_id", "thread_id", "user_id"}  # columns a Filter may name, besides metadata
# A cron a scheduler may fire now.
DUE = "enabled AND next_run_date <= now() AND (end_time IS NULL OR end_time > now())"


@dataclass
class Claim:
    """A due cron, locked until the claim's transaction ends: the scheduler queues its run on `conn` and
    advances it there, so that both commit together or neither does."""

    cron: dict  # its row, with the database's clock as `now`
    conn: AsyncConnection
    ready: bool  # False: its thread is locked by another transaction (being deleted, a run being queued)


class CronRepo(Repository):
    async def create(
        self, cron_id: UUID, *, assistant_id: UUID, thread_id: UUID | None, user_id: str | None, schedule: str,
        timezone: str | None, payload: dict, metadata: dict, on_run_completed: str | None, enabled: bool,
        end_time: datetime | None, next_run_date: datetime, owner: dict,
    ) -> dict:
        try:
            return await self.one(
                f"""INSERT INTO cron (cron_id, assistant_id, thread_id, user_id, schedule, timezone, payload, metadata,
                                      on_run_completed, enabled, end_time, next_run_date, owner)
                    VALUES (%(cron_id)s, %(assistant_id)s, %(thread_id)s, %(user_id)s, %(schedule)s, %(timezone)s,
                            %(payload)s, %(metadata)s, %(on_run_completed)s, %(enabled)s, %(end_time)s, %(next)s,
                            %(owner)s)
                    RETURNING {PUBLIC}""",
                {
                    "cron_id": cron_id, "assistant_id": assistant_id, "thread_id": thread_id, "user_id": user_id,
                    "schedule": schedule, "timezone": timezone, "payload": jsonb(payload), "metadata": jsonb(metadata),
                    "on_run_completed": on_run_completed, "enabled": enabled, "end_time": end_time,
                    "next": next_run_date, "owner": jsonb(owner),
                },
            )
        except ForeignKeyViolation:  # its thread or assistant deleted since the caller looked
            raise NotFound("Thread or assistant not found.") from None

    async def get(self, cron_id: UUID, filter: Filter = ANYONE) -> dict:
        visible, params = filter.sql("cron", FILTERABLE)
        row = await self.one(
            f"SELECT {PUBLIC} FROM cron WHERE cron_id = %(id)s AND {visible}", {**params, "id": cron_id}
        )
        if row is None:
            raise NotFound(f"Cron '{cron_id}' not found")
        return row

    async def update(self, cron_id: UUID, change, filter: Filter = ANYONE) -> dict:
        """`change(row) -> {column: value}` computes the new values from the locked row (json columns as dicts)."""
        visible, params = filter.sql("cron", FILTERABLE)
        async with self.transaction() as conn:
            row = await self.one(
                f"SELECT {PUBLIC} FROM cron WHERE cron_id = %(id)s AND {visible} FOR UPDATE",
                {**params, "id": cron_id},
                conn,
            )
            if row is None:
                raise NotFound(f"Cron '{cron_id}' not found")
            values = change(row)
            for column in ("payload", "metadata"):
                if column in values:
                    values[column] = jsonb(values[column])
            sets = ", ".join(f'"{column}" = %({column})s' for column in values if column in COLUMNS)
            return await self.one(
                f"UPDATE cron SET {sets}, updated_at = now() WHERE cron_id = %(cron_id)s RETURNING {PUBLIC}",
                {**values, "cron_id": cron_id},
                conn,
            )

    async def delete(self, cron_id: UUID, filter: Filter = ANYONE) -> None:
        visible, params = filter.sql("cron", FILTERABLE)
        if await self.one(
            f"DELETE FROM cron WHERE cron_id = %(id)s AND {visible} RETURNING 1", {**params, "id": cron_id}
        ) is None:
            raise NotFound(f"Cron '{cron_id}' not found")

    @staticmethod
    def _where(
        assistant_id: UUID | None, thread_id: UUID | None, enabled: bool | None, metadata: dict | None, filter: Filter
    ) -> tuple[str, dict]:
        visible, params = filter.sql("cron", FILTERABLE)
        params.update(
            assistant_id=assistant_id, thread_id=thread_id, enabled=enabled,
            metadata=jsonb(metadata) if metadata else None,
        )
        return f"""{visible} AND (%(assistant_id)s::uuid IS NULL OR assistant_id = %(assistant_id)s)
                   AND (%(thread_id)s::uuid IS NULL OR thread_id = %(thread_id)s)
                   AND (%(enabled)s::boolean IS NULL OR enabled = %(enabled)s)
                   AND (%(metadata)s::jsonb IS NULL OR metadata @> %(metadata)s)""", params

    async def search(
        self, *, assistant_id: UUID | None = None, thread_id: UUID | None = None, enabled: bool | None = None,
        metadata: dict | None = None, limit: int = 10, offset: int = 0, sort_by: str | None = None,
        sort_order: str | None = None, select: list[str] | None = None, filter: Filter = ANYONE,
    ) -> list[dict]:
        where, params = self._where(assistant_id, thread_id, enabled, metadata, filter)
        order = order_clause(sort_by, sort_order, SORTABLE, "created_at")
        return await self.all(
            f"SELECT {select_clause(select, COLUMNS)} FROM cron WHERE {where} {order}, cron_id"
            " LIMIT %(limit)s OFFSET %(offset)s",
            {**params, "limit": limit, "offset": offset},
        )

    async def count(
        self, *, assistant_id: UUID | None = None, thread_id: UUID | None = None, metadata: dict | None = None,
        filter: Filter = ANYONE,
    ) -> int:
        where, params = self._where(assistant_id, thread_id, None, metadata, filter)
        return await self.scalar(f"SELECT count(*) FROM cron WHERE {where}", params)

    # ---- the schedulers' side ------------------------------------------------------------------------

    @asynccontextmanager
    async def claim_due(self, passed: list[UUID]) -> AsyncIterator[Claim | None]:
        """Claim the cron due the longest (None: none due), but those in `passed`: locked, other schedulers skip
        it; once the claim's transaction commits its next_run_date is in the future, so none fires it again.

        Its thread is locked too, without waiting (a thread being deleted holds its row and then waits for its
        crons' rows: waiting for it while holding the cron's would be a deadlock)."""
        async with self.transaction() as conn:
            cron = await self.one(
                f"""SELECT {PUBLIC}, owner, now() AS now FROM cron WHERE {DUE} AND cron_id <> ALL(%s::uuid[])
                    ORDER BY next_run_date LIMIT 1 FOR UPDATE SKIP LOCKED""",
                (passed,),
                conn,
            )
            if cron is None:
                yield None
                return
            ready = cron["thread_id"] is None or await self.one(
                "SELECT 1 FROM thread WHERE thread_id = %s FOR UPDATE SKIP LOCKED", (cron["thread_id"],), conn
            ) is not None
            yield Claim(cron, conn, ready)

    async def advance(self, claim: Claim, next_run_date: datetime) -> None:
        await self.execute(
            "UPDATE cron SET next_run_date = %s WHERE cron_id = %s", (next_run_date, claim.cron["cron_id"]), claim.conn
        )

    async def next_due_in(self) -> float | None:
        """Seconds until the next enabled cron is due, by the database's clock (None: no cron to fire)."""
        return await self.scalar(
            """SELECT extract(epoch FROM min(next_run_date) - now())::float FROM cron
               WHERE enabled AND (end_time IS NULL OR end_time > now())"""
        )
