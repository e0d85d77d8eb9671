"""Shared plumbing of the repositories: run one statement, get dict rows back."""
from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from .. import serde


def jsonb(value: Any) -> Jsonb:
    return Jsonb(value, dumps=serde.dumps)


class Repository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def all(self, sql: str, params: Any = None, conn: AsyncConnection | None = None) -> list[dict]:
        if conn is not None:
            return await (await conn.execute(sql, params)).fetchall()
        async with self.pool.connection() as conn:
            return await (await conn.execute(sql, params)).fetchall()

    async def execute(self, sql: str, params: Any = None, conn: AsyncConnection | None = None) -> None:
        """A statement that returns no rows."""
        if conn is not None:
            await conn.execute(sql, params)
            return
        async with self.pool.connection() as conn:
            await conn.execute(sql, params)

    async def one(self, sql: str, params: Any = None, conn: AsyncConnection | None = None) -> dict | None:
        rows = await self.all(sql, params, conn)
        return rows[0] if rows else None

    async def scalar(self, sql: str, params: Any = None, conn: AsyncConnection | None = None) -> Any:
        row = await self.one(sql, params, conn)
        return next(iter(row.values())) if row else None


def order_clause(sort_by: str | None, sort_order: str | None, allowed: set[str], default: str) -> str:
    """ORDER BY from validated names only (never interpolate user text)."""
    column = sort_by if sort_by in allowed else default
    direction = "ASC" if (sort_order or "").lower() == "asc" else "DESC"
    return f'ORDER BY "{column}" {direction}'


def select_clause(select: list[str] | None, allowed: list[str]) -> str:
    names = [c for c in (select or allowed) if c in allowed] or allowed
    return ", ".join(f'"{c}"' for c in names)
