"""Our SQL on the checkpoint library's tables is written against one version of its schema: an
upgrade that changes it must fail here, not silently drop a column in a thread copy."""
from __future__ import annotations

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
import psycopg

from agent_server.storage import checkpoints


def test_the_installed_saver_has_the_migrations_our_sql_was_written_against():
    assert len(AsyncPostgresSaver.MIGRATIONS) == checkpoints.SAVER_MIGRATIONS, (
        "langgraph-checkpoint-postgres changed its schema: check storage/checkpoints.py against it, "
        "then update SAVER_MIGRATIONS and TABLES"
    )


def test_the_checkpoint_tables_have_exactly_the_columns_we_copy(server, database_uri):
    with psycopg.connect(database_uri) as conn:
        for table, columns in checkpoints.TABLES.items():
            found = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                (table,),
            )]
            assert sorted(found) == sorted(columns), table
