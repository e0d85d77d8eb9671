"""A resumable run's follower misses no event when a publish is lost on the way (Redis away for a moment, say):
the events are stored before they are published, numbered one after another, and a follower that sees a number
skipped reads the missing ones from storage before going on."""
from __future__ import annotations

import pytest

from agent_server.broker import MemoryBroker, unpack

from test_queue_worker import _new_thread, _queue


class LosesOnePublish(MemoryBroker):
    """Our in-process broker, losing the publish of one numbered run event, as a Redis publish that failed."""

    def __init__(self, lost_id: str) -> None:
        super().__init__()
        self.lost_id, self.lost = lost_id, []

    async def publish(self, channel: str, message: bytes) -> None:
        if channel.startswith("run:") and not self.lost and unpack(message)[1] == self.lost_id:
            self.lost.append(message)
            return
        await super().publish(channel, message)


@pytest.mark.parametrize("lost_id", ["0", "2"])  # the first event (metadata), or one in the middle
async def test_a_follower_of_a_resumable_run_gets_from_storage_an_event_whose_publish_was_lost(postgres_server, lost_id):
    from agent_server.graphs import default_assistant_id
    from agent_server.services import SYSTEM, runs
    from run_helpers import STEPS, slow

    async with _queue(postgres_server) as (rt, worker):
        rt.broker = LosesOnePublish(lost_id)
        await worker.start()
        payload = {"input": {}, "config": slow(0.05), "stream_mode": ["updates"], "stream_resumable": True}
        run, follower = await runs.stream(rt, SYSTEM, await _new_thread(rt), default_assistant_id("slow"), payload)
        try:  # subscribed already (before the run could publish anything); the caller closes it
            events = [(event, event_id) async for event, _, event_id in follower.events() if event]
        finally:
            await follower.__aexit__(None, None, None)
        assert rt.broker.lost, f"the publish of event {lost_id} was lost"
        assert [event_id for _, event_id in events] == [str(i) for i in range(len(events))], "every event once, in order"
        assert [event for event, _ in events] == ["metadata"] + ["updates"] * len(STEPS)
        assert follower.result["status"] == "success"
