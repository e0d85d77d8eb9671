"""A run this process claims as it creates it starts from its thread's latest checkpoint read in that same round
trip (pipelined after the claim, in its transaction): no read of its own, and the state it continues is the latest."""
from __future__ import annotations

import asyncio

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from agent_server.config import load_settings
from agent_server.graphs import default_assistant_id
from agent_server.runtime import Runtime
from agent_server.services import SYSTEM, runs, threads
from agent_server.storage.checkpointer import LatestCheckpoint
from agent_server.worker.consumer import QueueWorker
from conftest import CONFIG, create_database, drop_database

COUNTER = default_assistant_id("counter")


@pytest.fixture
async def queue(postgres_server):
    settings = load_settings(CONFIG)
    settings.database_uri = create_database(postgres_server)
    rt = await Runtime.start(settings)
    worker = QueueWorker(rt)
    await worker.start()
    yield rt, worker
    await worker.stop()
    await rt.close()
    drop_database(postgres_server, settings.database_uri)


async def _wait(rt, thread_id, payload: dict) -> dict:
    _, result = await runs.wait(rt, SYSTEM, thread_id, COUNTER, payload, asyncio.Future())
    assert result["status"] == "success", result
    return result["output"]


async def test_a_run_started_by_its_creation_continues_the_latest_state_without_reading_it_again(queue, monkeypatch):
    rt, worker = queue
    reads: list[dict] = []  # the saver's own queries for a thread's latest checkpoint (the library's aget_tuple)
    library_read = AsyncPostgresSaver.aget_tuple

    async def counted(self, config):
        if not config["configurable"].get("checkpoint_id"):
            reads.append(config["configurable"])
        return await library_read(self, config)

    monkeypatch.setattr(AsyncPostgresSaver, "aget_tuple", counted)
    thread = await _thread(rt)
    assert await _wait(rt, thread, {"input": {}}) == {"count": 1, "log": ["step"]}  # a new thread: nothing to read
    # A state written between two runs (not by a run) is what the next one starts from.
    await threads.update_state(rt, SYSTEM, thread, {"count": 10}, as_node=None, checkpoint=None)
    assert await _wait(rt, thread, {"input": {}}) == {"count": 11, "log": ["step", "step"]}
    assert [r for r in reads if r.get("run_id")] == []  # neither run read its thread's checkpoint again
    assert rt.checkpointer._primed == {}  # nothing kept past the runs

    # A run from a given checkpoint reads that one, as before: back to the first run's state.
    history = await threads.history(rt, SYSTEM, thread, limit=10, before=None, metadata=None, checkpoint=None)
    first = next(s for s in history if s.values == {"count": 1, "log": ["step"]})
    assert await _wait(rt, thread, {"input": {}, "checkpoint_id": first.config["configurable"]["checkpoint_id"]}) == {
        "count": 2, "log": ["step", "step"]}


async def test_no_checkpoint_is_read_for_a_run_the_creation_only_queues(queue, monkeypatch):
    rt, _ = queue
    received: list[bool] = []
    receive = LatestCheckpoint.receive

    async def counted(self):
        await receive(self)
        received.append(self.row is not None)

    monkeypatch.setattr(LatestCheckpoint, "receive", counted)
    thread = await _thread(rt)
    await _wait(rt, thread, {"input": {}})
    received.clear()
    await _wait(rt, thread, {"input": {}})
    assert received == [True]  # claimed by its creation: the checkpoint the first run left, read with the claim
    received.clear()
    await runs.create(rt, SYSTEM, thread, COUNTER, {"input": {}, "after_seconds": 60})  # the thread is busy now
    assert (await runs.create(rt, SYSTEM, thread, COUNTER, {"input": {}}))["status"] == "pending"
    assert received == [False]  # that run was only queued: its thread's checkpoint was not read for it


async def test_a_checkpoint_read_with_the_claim_that_does_not_decode_leaves_the_run_to_read_it_itself(queue):
    """The run is created and executes (and meets the error on its own read), as without the read: never a
    creation that fails after its claim committed, leaving a run nothing executes."""
    rt, worker = queue
    thread = await _thread(rt)
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"], checkpoint["channel_versions"] = {"count": 10**400}, {"count": "1"}
    # the stock saver writes it inline as JSON (PostgreSQL takes the number; orjson does not read it back)
    await AsyncPostgresSaver.aput(rt.checkpointer, {"configurable": {"thread_id": str(thread), "checkpoint_ns": ""}},
                                  checkpoint, {}, {"count": "1"})
    _, result = await runs.wait(rt, SYSTEM, thread, COUNTER, {"input": {}}, asyncio.Future())
    assert result["status"] == "error"
    assert worker._reserved == 0 and not worker.active


async def _thread(rt) -> str:
    return (await threads.create(rt, SYSTEM, None, metadata={}, if_exists="raise", ttl=None, supersteps=None))["thread_id"]
