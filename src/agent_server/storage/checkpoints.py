"""Our only SQL on langgraph-checkpoint-postgres's own tables: copying a thread, a rollback, deleting
threads (and orphans), the storage report.

Those tables are the library's; its migrations may change them. The versions below are the ones this
SQL was written against: a test compares them with the installed library, so that an upgrade that
changes the schema is noticed here instead of silently dropping a column."""
from __future__ import annotations

from uuid import UUID

SAVER_MIGRATIONS = 10  # len(AsyncPostgresSaver.MIGRATIONS) this module was checked against
# The columns each table has at that version, all of which copy_thread copies.
TABLES = {
    "checkpoints": ["thread_id", "checkpoint_ns", "checkpoint_id", "parent_checkpoint_id", "type", "checkpoint", "metadata"],
    "checkpoint_blobs": ["thread_id", "checkpoint_ns", "channel", "version", "type", "blob"],
    "checkpoint_writes": ["thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx", "channel", "type", "blob", "task_path"],
}


async def copy_thread(conn, old: UUID, new: UUID) -> None:
    """Every checkpoint of `old` under `new`, the thread id in their metadata included."""
    for table, columns in TABLES.items():
        rest = [c for c in columns if c not in ("thread_id", "metadata")]
        metadata = ["metadata || jsonb_build_object('thread_id', %(new)s::text)"] if "metadata" in columns else []
        await conn.execute(
            f"""INSERT INTO {table} ({", ".join(columns)})
                SELECT %(new)s, {", ".join(rest + metadata)} FROM {table} WHERE thread_id = %(old)s""",
            {"new": str(new), "old": str(old)},
        )


async def delete_run(conn, thread_id: UUID, run_id: UUID) -> None:
    """Rollback: forget the checkpoints a run wrote (their metadata carries the run id)."""
    await conn.execute(
        """WITH gone AS (
               DELETE FROM checkpoints WHERE thread_id = %(tid)s AND metadata->>'run_id' = %(run)s
               RETURNING checkpoint_ns, checkpoint_id)
           DELETE FROM checkpoint_writes w USING gone
           WHERE w.thread_id = %(tid)s AND w.checkpoint_ns = gone.checkpoint_ns AND w.checkpoint_id = gone.checkpoint_id""",
        {"tid": str(thread_id), "run": str(run_id)},
    )


async def delete_threads(conn, thread_ids: list[UUID]) -> None:
    ids = [str(t) for t in thread_ids]
    for table in TABLES:
        await conn.execute(f"DELETE FROM {table} WHERE thread_id = ANY(%s)", (ids,))


async def delete_orphans(conn) -> int:
    """Checkpoints of threads that no longer exist (a run that wrote after its thread was deleted, by
    a worker that died before cleaning up). Returns the number of rows deleted."""
    deleted = 0
    for table in TABLES:
        cur = await conn.execute(
            f"DELETE FROM {table} c WHERE NOT EXISTS (SELECT 1 FROM thread t WHERE t.thread_id::text = c.thread_id)"
        )
        deleted += cur.rowcount
    return deleted


async def usage(conn, thread_id: UUID) -> dict:
    """Bytes the thread's checkpoints occupy, as stored (compressed) by PostgreSQL; channel values inline
    in checkpoint rows count both there and under their channel."""
    tid = {"tid": str(thread_id)}
    cur = await conn.execute(
        """SELECT
             (SELECT jsonb_build_object('count', count(*), 'bytes',
                     coalesce(sum(pg_column_size(checkpoint) + pg_column_size(metadata)), 0))
              FROM checkpoints WHERE thread_id = %(tid)s) AS checkpoints,
             (SELECT jsonb_build_object('count', count(*), 'bytes', coalesce(sum(pg_column_size(blob)), 0))
              FROM checkpoint_writes WHERE thread_id = %(tid)s) AS pending_writes""",
        tid,
    )
    sizes = await cur.fetchone()
    # Every version of every channel the checkpoints name (as the official server counts them): its blob,
    # or its small value (None, numbers, strings, booleans) the saver keeps inline in the checkpoint row,
    # at the size of its JSON, or nothing (0 bytes) when the version holds no value (a consumed input).
    cur = await conn.execute(
        """WITH named AS (
               SELECT c.checkpoint_ns, v.key AS channel, v.value #>> '{}' AS version,
                      c.checkpoint->'channel_values'->v.key AS value
               FROM checkpoints c, jsonb_each(c.checkpoint->'channel_versions') v
               WHERE c.thread_id = %(tid)s
           ), inline AS (
               SELECT checkpoint_ns, channel, version,
                      max(CASE WHEN value IS NULL OR jsonb_typeof(value) = 'null' THEN 0
                               ELSE octet_length(value::text) END) AS bytes
               FROM named GROUP BY checkpoint_ns, channel, version
           ), blobs AS (
               SELECT checkpoint_ns, channel, version, coalesce(pg_column_size(blob), 0) AS bytes
               FROM checkpoint_blobs WHERE thread_id = %(tid)s
           ), versions AS (
               SELECT DISTINCT ON (checkpoint_ns, channel, version) channel, bytes
               FROM (SELECT *, 0 AS blob_first FROM blobs UNION ALL SELECT *, 1 FROM inline) v
               ORDER BY checkpoint_ns, channel, version, blob_first
           )
           SELECT channel, count(*) AS versions, coalesce(sum(bytes), 0) AS bytes
           FROM versions GROUP BY channel ORDER BY channel""",
        tid,
    )
    by_channel = {c["channel"]: {"versions": c["versions"], "bytes": int(c["bytes"])} for c in await cur.fetchall()}
    channel_values = {
        "count": sum(c["versions"] for c in by_channel.values()),
        "bytes": sum(c["bytes"] for c in by_channel.values()),
        "by_channel": by_channel,
    }
    parts = (sizes["checkpoints"], channel_values, sizes["pending_writes"])
    return {
        "thread_id": thread_id,
        "total_bytes": sum(p["bytes"] for p in parts),
        "checkpoints": sizes["checkpoints"],
        "channel_values": channel_values,
        "pending_writes": sizes["pending_writes"],
    }
