"""Assistants and their versions."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any
from uuid import UUID

from .. import serde
from ..errors import Conflict, NotFound
from .base import ANYONE, Filter, Repository, jsonb, order_clause, select_clause

COLUMNS = [
    "assistant_id", "graph_id", "config", "context", "created_at", "updated_at",
    "metadata", "version", "name", "description",
]
SORTABLE = {"assistant_id", "graph_id", "name", "created_at", "updated_at"}
FILTERABLE = {"assistant_id", "graph_id"}  # columns a Filter may name, besides metadata
CACHED = 1024  # assistants whose latest row a process keeps for the runs it creates

# SQL: the assistant of %(assistant)s is still the one read as of %(assistant_version)s and %(assistant_updated_at)s
# (every change sets a new updated_at; a deleted one matches nothing).
UNCHANGED = """EXISTS (SELECT 1 FROM assistant WHERE assistant_id = %(assistant)s
                   AND version = %(assistant_version)s AND updated_at = %(assistant_updated_at)s)"""


class StaleAssistant(Exception):
    """A run was to be created from a cached assistant that has changed since (UNCHANGED failed): read it again."""


def seen(assistant: dict) -> dict:
    """The parameters of UNCHANGED for this assistant row."""
    return {"assistant_version": assistant["version"], "assistant_updated_at": assistant["updated_at"]}


def _visible(filter: Filter, alias: str = "assistant") -> tuple[str, dict]:
    return filter.sql(alias, FILTERABLE)


_JSON = ("config", "context", "metadata")  # the columns a caller may change in what it is given


def _frozen(row: dict) -> dict:
    """A row to cache: its JSON values encoded, so that nothing a caller does to its own copy (a graph factory
    given its config, say) changes the cached one."""
    return {**row, **{k: serde.dumps(row[k]) for k in _JSON}}


def _thawed(entry: dict) -> dict:
    """A cached row as a read would give it: new JSON values each time (a tenth of a deep copy's time)."""
    return {**entry, **{k: serde.loads(entry[k]) for k in _JSON}}


class AssistantRepo(Repository):
    def __init__(self, pool) -> None:
        super().__init__(pool)
        self._latest: OrderedDict[UUID, dict] = OrderedDict()

    async def cached(self, assistant_id: UUID) -> dict:
        """The assistant as this process last read it, saving a round trip per run: whoever creates a run from
        it checks, in the statement that creates the run, that it is still the latest (UNCHANGED)."""
        row = self._latest.get(assistant_id)
        if row is None:
            return await self.get(assistant_id)
        self._latest.move_to_end(assistant_id)
        return _thawed(row)

    def _remember(self, row: dict) -> None:
        self._latest[row["assistant_id"]] = _frozen(row)
        self._latest.move_to_end(row["assistant_id"])
        if len(self._latest) > CACHED:
            self._latest.popitem(last=False)

    async def create(
        self,
        assistant_id: UUID,
        graph_id: str,
        *,
        config: dict,
        context: dict,
        metadata: dict,
        name: str,
        description: str | None,
        if_exists: str = "raise",
    ) -> dict:
        params = {
            "id": assistant_id, "graph_id": graph_id, "config": jsonb(config), "context": jsonb(context),
            "metadata": jsonb(metadata), "name": name, "description": description,
        }
        async with self.pool.connection() as conn, conn.transaction():
            row = await self.one(
                """INSERT INTO assistant (assistant_id, graph_id, config, context, metadata, name, description)
                   VALUES (%(id)s, %(graph_id)s, %(config)s, %(context)s, %(metadata)s, %(name)s, %(description)s)
                   ON CONFLICT (assistant_id) DO NOTHING RETURNING *""",
                params,
                conn,
            )
            if row is None:
                if if_exists == "do_nothing":
                    return await self.get(assistant_id, conn)
                raise Conflict(f"Assistant {assistant_id} already exists")
            await self._snapshot(row, conn)
            return row

    async def _snapshot(self, row: dict, conn) -> None:
        await conn.execute(
            """INSERT INTO assistant_version
                 (assistant_id, version, graph_id, name, description, config, context, metadata)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                row["assistant_id"], row["version"], row["graph_id"], row["name"], row["description"],
                jsonb(row["config"]), jsonb(row["context"]), jsonb(row["metadata"]),
            ),
        )

    async def get(self, assistant_id: UUID, conn=None, filter: Filter = ANYONE) -> dict:
        visible, params = _visible(filter)
        row = await self.one(
            f"SELECT * FROM assistant WHERE assistant_id = %(id)s AND {visible}", {**params, "id": assistant_id}, conn
        )
        if row is None:
            self._latest.pop(assistant_id, None)
            raise NotFound(f"Assistant {assistant_id} not found")
        if conn is None:  # committed, as of now
            self._remember(row)
        return row

    async def update(self, assistant_id: UUID, changes: dict[str, Any], filter: Filter = ANYONE) -> dict:
        """Every update is a new version that becomes the latest."""
        visible, params = _visible(filter)
        self._latest.pop(assistant_id, None)
        async with self.pool.connection() as conn, conn.transaction():
            current = await self.one(
                f"SELECT * FROM assistant WHERE assistant_id = %(id)s AND {visible} FOR UPDATE",
                {**params, "id": assistant_id},
                conn,
            )
            if current is None:
                raise NotFound(f"Assistant {assistant_id} not found")
            latest = await self.scalar(
                "SELECT max(version) FROM assistant_version WHERE assistant_id = %s", (assistant_id,), conn
            )
            given = {k: v for k, v in changes.items() if v is not None}
            if "metadata" in given:  # metadata merges; everything else replaces
                given["metadata"] = {**current["metadata"], **given["metadata"]}
            new = {**current, **given, "version": latest + 1}
            row = await self.one(
                """UPDATE assistant SET graph_id = %s, name = %s, description = %s, config = %s, context = %s,
                       metadata = %s, version = %s, updated_at = now()
                   WHERE assistant_id = %s RETURNING *""",
                (
                    new["graph_id"], new["name"], new["description"], jsonb(new["config"]), jsonb(new["context"]),
                    jsonb(new["metadata"]), new["version"], assistant_id,
                ),
                conn,
            )
            await self._snapshot(row, conn)
            return row

    async def delete(self, assistant_id: UUID, *, with_threads: bool = False, filter: Filter = ANYONE) -> list[UUID]:
        """Delete the assistant; with_threads: also return the ids of its threads, for the caller to delete."""
        visible, params = _visible(filter)
        self._latest.pop(assistant_id, None)
        sql = f"DELETE FROM assistant WHERE assistant_id = %(id)s AND {visible} RETURNING 1"
        if await self.one(sql, {**params, "id": assistant_id}) is None:
            raise NotFound(f"Assistant with ID {assistant_id} not found")
        if not with_threads:
            return []
        rows = await self.all(
            "SELECT thread_id FROM thread WHERE metadata @> jsonb_build_object('assistant_id', %s::text)",
            (str(assistant_id),),
        )
        return [r["thread_id"] for r in rows]

    @staticmethod
    def _where(graph_id: str | None, name: str | None, metadata: dict | None, filter: Filter) -> tuple[str, dict]:
        visible, params = _visible(filter)
        clauses = [visible]
        if graph_id:
            clauses.append("graph_id = %(graph_id)s")
            params["graph_id"] = graph_id
        if name:  # a case-insensitive substring, wildcards taken literally
            clauses.append("name ILIKE %(name)s")
            params["name"] = "%" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        if metadata:
            clauses.append("metadata @> %(metadata)s")
            params["metadata"] = jsonb(metadata)
        return " AND ".join(clauses), params

    async def search(
        self,
        *,
        graph_id: str | None = None,
        name: str | None = None,
        metadata: dict | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: str | None = None,
        sort_order: str | None = None,
        select: list[str] | None = None,
        filter: Filter = ANYONE,
    ) -> list[dict]:
        where, params = self._where(graph_id, name, metadata, filter)
        order = order_clause(sort_by, sort_order, SORTABLE, "created_at")
        rows = await self.all(
            f"SELECT {select_clause(select, COLUMNS)} FROM assistant WHERE {where} {order}, assistant_id"
            " LIMIT %(limit)s OFFSET %(offset)s",
            {**params, "limit": limit, "offset": offset},
        )
        return rows

    async def count(
        self, *, graph_id: str | None = None, name: str | None = None, metadata: dict | None = None,
        filter: Filter = ANYONE,
    ) -> int:
        where, params = self._where(graph_id, name, metadata, filter)
        return await self.scalar(f"SELECT count(*) FROM assistant WHERE {where}", params)

    async def versions(
        self, assistant_id: UUID, *, metadata: dict | None, limit: int, offset: int, filter: Filter = ANYONE
    ) -> list[dict]:
        await self.get(assistant_id, filter=filter)
        return await self.all(
            """SELECT * FROM assistant_version WHERE assistant_id = %(id)s
                 AND (%(metadata)s::jsonb IS NULL OR metadata @> %(metadata)s)
               ORDER BY version DESC LIMIT %(limit)s OFFSET %(offset)s""",
            {"id": assistant_id, "metadata": jsonb(metadata) if metadata else None, "limit": limit, "offset": offset},
        )

    async def set_latest(self, assistant_id: UUID, version: int | None, filter: Filter = ANYONE) -> dict:
        await self.get(assistant_id, filter=filter)
        self._latest.pop(assistant_id, None)
        row = await self.one(
            """UPDATE assistant a SET graph_id = v.graph_id, name = v.name, description = v.description,
                   config = v.config, context = v.context, metadata = v.metadata, version = v.version,
                   updated_at = now()
               FROM assistant_version v
               WHERE a.assistant_id = %s AND v.assistant_id = a.assistant_id AND v.version = %s
               RETURNING a.*""",
            (assistant_id, version),
        )
        if row is None:
            raise NotFound(f"Version {version} not found for assistant {assistant_id}")
        return row
