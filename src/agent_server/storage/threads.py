"""Threads: metadata, status and the latest values; their checkpoints live in the checkpointer's tables."""
from __future__ import annotations

from uuid import UUID

from ..errors import Conflict, NotFound
from .base import Repository, jsonb, order_clause, select_clause

COLUMNS = [
    "thread_id", "created_at", "updated_at", "metadata", "status", "config", "values", "interrupts", "error",
]
SORTABLE = {"thread_id", "status", "created_at", "updated_at"}
PUBLIC = ", ".join(f'"{c}"' for c in COLUMNS)


class ThreadRepo(Repository):
    async def create(
        self,
        thread_id: UUID,
        *,
        metadata: dict,
        if_exists: str = "raise",
        ttl_minutes: float | None = None,
        ephemeral: bool = False,
        conn=None,
    ) -> dict:
        row = await self.one(
            f"""INSERT INTO thread (thread_id, metadata, ephemeral, expires_at)
                VALUES (%s, %s, %s, now() + %s * interval '1 minute')
                ON CONFLICT (thread_id) DO NOTHING RETURNING {PUBLIC}""",
            (thread_id, jsonb(metadata), ephemeral, ttl_minutes),
            conn,
        )
        if row is None:
            if if_exists == "do_nothing":
                return await self.get(thread_id, conn)
            raise Conflict(f"Thread {thread_id} already exists")
        return row

    async def get(self, thread_id: UUID, conn=None) -> dict:
        row = await self.one(f"SELECT {PUBLIC} FROM thread WHERE thread_id = %s", (thread_id,), conn)
        if row is None:
            raise NotFound(f"Thread {thread_id} not found")
        return row

    async def exists(self, thread_id: UUID) -> bool:
        return await self.one("SELECT 1 FROM thread WHERE thread_id = %s", (thread_id,)) is not None

    async def update(self, thread_id: UUID, *, metadata: dict | None, ttl_minutes: float | None = None) -> dict:
        row = await self.one(
            f"""UPDATE thread SET metadata = metadata || %s, updated_at = now(),
                    expires_at = coalesce(now() + %s * interval '1 minute', expires_at)
                WHERE thread_id = %s RETURNING {PUBLIC}""",
            (jsonb(metadata or {}), ttl_minutes, thread_id),
        )
        if row is None:
            raise NotFound(f"Thread {thread_id} not found")
        return row

    async def delete(self, thread_id: UUID, conn=None) -> None:
        if await self.one("DELETE FROM thread WHERE thread_id = %s RETURNING 1", (thread_id,), conn) is None:
            raise NotFound(f"Thread {thread_id} not found")

    async def set_state(self, thread_id: UUID, *, values, interrupts: dict, status: str | None = None, conn=None) -> None:
        """Record the thread's latest values (after a run or a state update)."""
        await self.all(
            """UPDATE thread SET "values" = %s, interrupts = %s, updated_at = now(),
                   status = CASE WHEN active_run_id IS NOT NULL THEN status
                                 ELSE coalesce(%s, CASE WHEN %s THEN 'interrupted' ELSE 'idle' END) END
               WHERE thread_id = %s""",
            (jsonb(values), jsonb(interrupts), status, bool(interrupts), thread_id),
            conn,
        )

    @staticmethod
    def _where(ids, metadata, values, status) -> tuple[str, dict]:
        clauses, params = ["true"], {}
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
        sort_by=None, sort_order=None, select=None,
    ) -> list[dict]:
        where, params = self._where(ids, metadata, values, status)
        order = order_clause(sort_by, sort_order, SORTABLE, "created_at")
        return await self.all(
            f"SELECT {select_clause(select, COLUMNS)} FROM thread WHERE {where} {order} LIMIT %(limit)s OFFSET %(offset)s",
            {**params, "limit": limit, "offset": offset},
        )

    async def count(self, *, ids=None, metadata=None, values=None, status=None) -> int:
        where, params = self._where(ids, metadata, values, status)
        return await self.scalar(f"SELECT count(*) FROM thread WHERE {where}", params)

    async def copy(self, thread_id: UUID, new_id: UUID) -> dict:
        """A new thread with the same metadata, values and checkpoints."""
        async with self.pool.connection() as conn, conn.transaction():
            row = await self.one(
                f"""INSERT INTO thread (thread_id, metadata, config, status, "values", interrupts)
                    SELECT %s, metadata, config, CASE WHEN status = 'busy' THEN 'idle' ELSE status END,
                           "values", interrupts FROM thread WHERE thread_id = %s
                    RETURNING {PUBLIC}""",
                (new_id, thread_id),
                conn,
            )
            if row is None:
                raise NotFound(f"Thread {thread_id} not found")
            old, new = str(thread_id), str(new_id)
            await conn.execute(
                """INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata)
                   SELECT %s, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
                          metadata || jsonb_build_object('thread_id', %s::text)
                   FROM checkpoints WHERE thread_id = %s""",
                (new, new, old),
            )
            await conn.execute(
                """INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
                   SELECT %s, checkpoint_ns, channel, version, type, blob FROM checkpoint_blobs WHERE thread_id = %s""",
                (new, old),
            )
            await conn.execute(
                """INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path)
                   SELECT %s, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path
                   FROM checkpoint_writes WHERE thread_id = %s""",
                (new, old),
            )
            return row

    async def delete_run_checkpoints(self, thread_id: UUID, run_id: UUID, conn=None) -> None:
        """Rollback: forget the checkpoints a run wrote (their metadata carries the run id)."""
        tid = str(thread_id)
        await self.all(
            """WITH gone AS (
                   DELETE FROM checkpoints WHERE thread_id = %s AND metadata->>'run_id' = %s
                   RETURNING checkpoint_ns, checkpoint_id)
               DELETE FROM checkpoint_writes w USING gone
               WHERE w.thread_id = %s AND w.checkpoint_ns = gone.checkpoint_ns AND w.checkpoint_id = gone.checkpoint_id
               RETURNING 1""",
            (tid, str(run_id), tid),
            conn,
        )

    async def delete_expired(self) -> list[UUID]:
        rows = await self.all(
            "DELETE FROM thread WHERE expires_at < now() AND active_run_id IS NULL RETURNING thread_id"
        )
        return [r["thread_id"] for r in rows]
