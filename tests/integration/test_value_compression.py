"""Migration 0010: the columns holding a graph's values compress with lz4 where the PostgreSQL server has it (the
system one here), and keep pglz where it does not (the embedded one is built without lz4); either way the
migration goes through and a large value reads back as written."""
from __future__ import annotations

import asyncio

import psycopg
import pytest

from agent_server.storage import database
from conftest import create_database, drop_database

COLUMNS = {
    ("checkpoints", "checkpoint"), ("checkpoint_blobs", "blob"), ("checkpoint_writes", "blob"), ("store", "value"),
    ("thread", "values"), ("thread", "interrupts"), ("run", "kwargs"), ("run", "output"), ("run_event", "data"),
    ("thread_event", "event"), ("webhook_outbox", "payload"),
}


@pytest.fixture(params=["system", "embedded"])
def admin_uri(request):
    if request.param == "system":
        return request.getfixturevalue("postgres_server")
    return request.getfixturevalue("private_postgres").get_uri()


async def test_values_compress_with_lz4_where_the_server_has_it(admin_uri):
    db = create_database(admin_uri)
    pool = await database.open_pool(db, max_size=2)
    try:
        await database.migrate(pool)
        with psycopg.connect(db, autocommit=True) as conn:
            has_lz4 = "lz4" in conn.execute(
                "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'").fetchone()[0]
            columns = conn.execute(
                "SELECT attrelid::regclass::text, attname, attcompression FROM pg_attribute"
                " WHERE attrelid::regclass::text = ANY(%s) AND attnum > 0", ([t for t, _ in COLUMNS],)).fetchall()
            assert {(t, c): m for t, c, m in columns if (t, c) in COLUMNS} == {col: "l" if has_lz4 else "" for col in COLUMNS}
            blob = b"a checkpoint's history, turn after turn; " * 5000  # 200 kB: compressed as it is stored
            conn.execute("INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)"
                         " VALUES ('t', '', 'messages', '1', 'msgpack', %s)", (blob,))
            stored, method = conn.execute(
                "SELECT blob, pg_column_compression(blob) FROM checkpoint_blobs WHERE thread_id = 't'").fetchone()
            assert (bytes(stored), method) == (blob, "lz4" if has_lz4 else "pglz")
    finally:
        await pool.close()
        drop_database(admin_uri, db)


async def test_a_table_busy_during_the_migration_keeps_pglz_and_holds_nothing_up(postgres_server):
    """A rolling deploy under load: another session holds a table the migration would alter. The migration gives
    that table up after its 2 s lock timeout, alters the others, and is recorded as done."""
    db = create_database(postgres_server)
    pool = await database.open_pool(db, max_size=2)
    try:
        await database.migrate(pool)
        with psycopg.connect(db, autocommit=True) as conn:  # back to before 0010, on the run table only
            conn.execute("DELETE FROM agent_server_migrations WHERE version = 10")
            conn.execute("ALTER TABLE run ALTER COLUMN kwargs SET COMPRESSION default")
            has_lz4 = "lz4" in conn.execute(
                "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'").fetchone()[0]
        with psycopg.connect(db) as busy:
            busy.execute("LOCK TABLE run IN ACCESS SHARE MODE")  # a long reader: no ALTER until it ends
            await asyncio.wait_for(database.migrate(pool), 30)
        with psycopg.connect(db, autocommit=True) as conn:
            compression = dict(conn.execute(
                "SELECT attrelid::regclass::text, attcompression FROM pg_attribute"
                " WHERE (attrelid::regclass::text, attname) IN (('run', 'kwargs'), ('checkpoint_blobs', 'blob'))").fetchall())
            assert compression == {"run": "", "checkpoint_blobs": "l" if has_lz4 else ""}
            assert conn.execute("SELECT max(version) FROM agent_server_migrations").fetchone()[0] == 10
    finally:
        await pool.close()
        drop_database(postgres_server, db)
