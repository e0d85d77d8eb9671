"""The queue in-process on a real PostgreSQL: a queue task that dies fails the worker, for its process to exit."""
from __future__ import annotations

import asyncio

from conftest import create_database, drop_database


async def test_a_queue_task_that_dies_marks_the_worker_failed_and_says_so(postgres_server, caplog):
    from agent_server.broker import MemoryBroker
    from agent_server.config import load_settings
    from agent_server.runtime import Runtime
    from agent_server.worker.consumer import QueueWorker
    from conftest import CONFIG

    class BrokerThatBreaks(MemoryBroker):
        """Our in-process broker, which stops accepting subscriptions once told to."""

        broken = False

        def subscribe(self, channel):
            if self.broken:
                raise RuntimeError("the broker broke")
            return super().subscribe(channel)

    settings = load_settings(CONFIG)
    settings.database_uri = create_database(postgres_server)
    rt = await Runtime.start(settings)
    rt.broker = BrokerThatBreaks()
    worker = QueueWorker(rt)
    try:
        await worker.start()
        rt.broker.end_subscriptions()  # a shutdown of the API side: the queue subscribes again...
        await asyncio.sleep(0.1)
        assert not worker.failed.is_set() and "CRITICAL" not in caplog.text
        rt.broker.broken = True  # ...but now it cannot: the queue is dead, the process must restart
        rt.broker.end_subscriptions()
        await asyncio.wait_for(worker.failed.wait(), 10)
        assert "queue task queue-listen stopped" in caplog.text
    finally:
        await worker.stop()
        await rt.close()
        drop_database(postgres_server, settings.database_uri)


async def test_a_worker_that_cannot_renew_its_leases_stops_its_runs_before_others_take_them(postgres_server, caplog):
    import psycopg

    from agent_server.config import load_settings
    from agent_server.graphs import default_assistant_id
    from agent_server.runtime import Runtime
    from agent_server.services import SYSTEM, runs
    from agent_server.worker.consumer import QueueWorker
    from conftest import CONFIG
    from run_helpers import slow

    settings = load_settings(CONFIG)
    settings.database_uri = uri = create_database(postgres_server)
    settings.lease_secs = 1.5
    rt = await Runtime.start(settings)
    worker = QueueWorker(rt)
    try:
        await worker.start()
        run = await runs.create(rt, SYSTEM, None, default_assistant_id("slow"), {"input": {}, "config": slow(2)})
        while run["run_id"] not in worker.active:
            await asyncio.sleep(0.05)
        async with await psycopg.AsyncConnection.connect(uri) as blocker:
            # The run's row held by another session: the worker's renewals cannot get through.
            await blocker.execute("BEGIN")
            await blocker.execute("SELECT 1 FROM run WHERE run_id = %s FOR UPDATE", (run["run_id"],))
            deadline = asyncio.get_running_loop().time() + 10
            while "leases not renewed" not in caplog.text:
                assert asyncio.get_running_loop().time() < deadline, "the worker went on executing the run"
                await asyncio.sleep(0.1)
            await blocker.execute("ROLLBACK")
        assert worker.active.get(run["run_id"]) is None or worker.active[run["run_id"]].control.reason == "release"
    finally:
        await worker.stop()
        await rt.close()
        drop_database(postgres_server, uri)
