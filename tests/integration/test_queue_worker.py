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
