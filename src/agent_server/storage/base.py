"""Shared plumbing of the repositories: run one statement, get dict rows back."""
from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from .. import serde


def jsonb(value: Any) -> Jsonb:
    return Jsonb(value, dumps=serde.dumps)


@dataclass(frozen=True)
class Filter:
    """The rows of a resource a caller may see: those whose metadata contains `metadata` and whose
    `columns` have these values. The services pass it down from the caller's context; every read,
    search, count, update and delete of a repository applies it."""

    metadata: dict = field(default_factory=dict)
    columns: dict = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.metadata or self.columns)

    def sql(self, alias: str, allowed: set[str]) -> tuple[str, dict]:
        """A WHERE condition on the table (or alias) `alias`, with its named parameters."""
        clauses, params = [], {}
        if self.metadata:
            clauses.append(f"{alias}.metadata @> %(_filter_metadata)s")
            params["_filter_metadata"] = jsonb(self.metadata)
        for i, (column, value) in enumerate(sorted(self.columns.items())):
            if column not in allowed:
                raise ValueError(f"cannot filter {alias} on {column!r}")
            clauses.append(f'{alias}."{column}" = %(_filter_{i})s')
            params[f"_filter_{i}"] = value
        return " AND ".join(clauses) or "true", params


ANYONE = Filter()  # no restriction


class Repository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def transaction(self, conn: AsyncConnection | None = None) -> AsyncIterator[AsyncConnection]:
        """A transaction on a pooled connection; or, given the caller's `conn`, a savepoint in its transaction
        (what fails inside is undone without aborting the caller's)."""
        if conn is not None:
            async with conn.transaction():
                yield conn
            return
        async with self.pool.connection() as conn, conn.transaction():
            yield conn

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

    async def one_then(self, sql: str, params: Any, then, only_if: str = "true", args: tuple = ()) -> dict | None:
        """`one`, and `then`'s read (its send(conn, only_if, args), then its receive(), which never raises) pipelined
        after it: one round trip, and one transaction (a pipeline's implicit one), so the read sees the statement's
        writes (`only_if`, SQL, may test them)."""
        if then is None:
            return await self.one(sql, params)
        async with self.pool.connection() as conn:
            async with conn.pipeline():
                cur = await conn.execute(sql, params)
                await then.send(conn, only_if, args)
            rows = await cur.fetchall()
            await then.receive()
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
