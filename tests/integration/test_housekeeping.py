"""The queue's housekeeping runs apart from lease renewal: a sweep stuck on a lock must not let the
leases of running runs lapse (other workers would take the runs over while they still run)."""
from __future__ import annotations

import asyncio
import uuid

import psycopg

from agent_server.config import load_settings
from agent_server.graphs import default_assistant_id
from agent_server.runtime import Runtime
from agent_server.services import SYSTEM, runs
from agent_server.worker.consumer import QueueWorker
from conftest import CONFIG, create_database, drop_database
from run_helpers import slow


async def _lease(uri: str, run_id) -> object:
    async with await psycopg.AsyncConnection.connect(uri) as conn:
        return (await (await conn.execute("SELECT lease_expires_at FROM run WHERE run_id = %s", (run_id,))).fetchone())[0]


async def test_a_stuck_housekeeping_step_does_not_stop_lease_renewal(postgres_server):
    settings = load_settings(CONFIG)
    settings.database_uri = uri = create_database(postgres_server)
    settings.lease_secs = 1.2  # renewal and housekeeping every 0.2 s
    rt = await Runtime.start(settings)
    worker = QueueWorker(rt)
    try:
        async with await psycopg.AsyncConnection.connect(uri) as blocker:
            # An old resumable event, locked by another session: pruning it (housekeeping) waits.
            await blocker.execute(
                "INSERT INTO run_event (run_id, seq, event, data, created_at) VALUES (%s, 1, 'x', '', now() - interval '1 day')",
                (uuid.uuid4(),),
            )
            await blocker.execute("BEGIN")
            await blocker.execute("SELECT 1 FROM run_event FOR UPDATE")
            await worker.start()
            run = await runs.create(rt, SYSTEM, None, default_assistant_id("slow"), {"input": {}, "config": slow(1)})
            while run["run_id"] not in worker.active:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # housekeeping has started, and is stuck
            first = await _lease(uri, run["run_id"])
            await asyncio.sleep(1.5)  # longer than the lease: renewals must have gone on meanwhile
            assert await _lease(uri, run["run_id"]) > first
            await blocker.execute("ROLLBACK")
    finally:
        await worker.stop()
        await rt.close()
        drop_database(postgres_server, uri)
