"""Migrations in-process on a fresh database: the lock that lets one process of many migrate."""
from __future__ import annotations

import psycopg
import pytest

from agent_server.storage import database
from conftest import create_database, drop_database


@pytest.fixture
async def fresh_pool(postgres_server):
    db = create_database(postgres_server)
    pool = await database.open_pool(db, max_size=2)
    yield pool
    await pool.close()
    drop_database(postgres_server, db)


def _hold_migration_lock(pool) -> psycopg.Connection:
    conn = psycopg.connect(pool.conninfo, autocommit=True)
    conn.execute("SELECT pg_advisory_lock(%s)", (database.MIGRATION_LOCK,))
    return conn


async def test_migrate_gives_up_with_a_clear_error_when_another_process_holds_the_lock_too_long(fresh_pool):
    with _hold_migration_lock(fresh_pool):
        with pytest.raises(database.MigrationLockTimeout, match="another process has been migrating"):
            await database.migrate(fresh_pool, wait_seconds=1)


async def test_a_migrated_database_starts_without_waiting_for_the_lock(fresh_pool):
    await database.migrate(fresh_pool)
    with _hold_migration_lock(fresh_pool):
        await database.migrate(fresh_pool, wait_seconds=0)  # would raise if it waited for the lock
