"""A process creates runs from the assistants it has read before (no read per run), yet every run is made from the
assistant's latest version: another process's update, version switch or delete is seen by the statement that
creates the run."""
from __future__ import annotations

import asyncio

import pytest

from agent_server.config import load_settings
from agent_server.errors import NotFound
from agent_server.runtime import Runtime
from agent_server.services import SYSTEM, Context, Filter, assistants, runs, threads
from agent_server.worker.consumer import QueueWorker
from conftest import CONFIG, create_database, drop_database


@pytest.fixture
async def two_processes(postgres_server):
    """Two runtimes on one database, as two server processes (no queue worker: runs stay pending)."""
    settings = load_settings(CONFIG)
    settings.database_uri = create_database(postgres_server)
    one = await Runtime.start(settings)
    other = await Runtime.start(settings)
    yield one, other
    await one.close()
    await other.close()
    drop_database(postgres_server, settings.database_uri)


async def _thread(rt) -> str:
    return (await threads.create(rt, SYSTEM, None, metadata={}, if_exists="raise", ttl=None, supersteps=None))["thread_id"]


def _model(run: dict) -> str:
    return run["kwargs"]["config"]["configurable"]["model"]


async def test_runs_follow_the_latest_assistant_whichever_process_changed_it(two_processes):
    one, other = two_processes
    made = await assistants.create(one, SYSTEM, None, "echo", config={"configurable": {"model": "v1"}}, context={},
                                   metadata={}, name="cached", description=None, if_exists="raise")
    aid = made["assistant_id"]
    thread = await _thread(one)
    assert _model(await runs.create(one, SYSTEM, thread, aid, {"input": {}})) == "v1"

    # The other process makes a new version: each way of creating a run sees it, on an idle thread, a busy one
    # (a run is pending on it), and stateless (a thread kept, or one of its own).
    await assistants.update(other, SYSTEM, aid, {"config": {"configurable": {"model": "v2"}}})
    assert _model(await runs.create(one, SYSTEM, await _thread(one), aid, {"input": {}})) == "v2"
    await assistants.update(other, SYSTEM, aid, {"config": {"configurable": {"model": "v3"}}})
    assert _model(await runs.create(one, SYSTEM, thread, aid, {"input": {}})) == "v3"  # behind the first run
    await assistants.update(other, SYSTEM, aid, {"config": {"configurable": {"model": "v4"}}})
    assert _model(await runs.create(one, SYSTEM, None, aid, {"input": {}, "on_completion": "keep"})) == "v4"
    await assistants.update(other, SYSTEM, aid, {"config": {"configurable": {"model": "v5"}}})
    assert _model(await runs.create(one, SYSTEM, None, aid, {"input": {}})) == "v5"

    # Back to an earlier version, made the latest elsewhere.
    await assistants.set_latest(other, SYSTEM, aid, 1)
    assert _model(await runs.create(one, SYSTEM, await _thread(one), aid, {"input": {}})) == "v1"

    # Deleted elsewhere: no run is created from it.
    await assistants.delete(other, SYSTEM, aid)
    fresh = await _thread(one)
    with pytest.raises(NotFound):
        await runs.create(one, SYSTEM, fresh, aid, {"input": {}})
    assert await runs.list_runs(one, SYSTEM, fresh, status=None, limit=10, offset=0) == []


async def test_what_a_caller_does_to_an_assistant_it_was_given_does_not_change_later_runs(two_processes):
    one, _ = two_processes
    made = await assistants.create(one, SYSTEM, None, "echo", config={"configurable": {"model": "v1"}}, context={},
                                   metadata={}, name="cached", description=None, if_exists="raise")
    given = await one.assistants.cached(made["assistant_id"])
    given["config"]["configurable"]["model"] = "changed"  # a graph factory handed the config, say
    assert _model(await runs.create(one, SYSTEM, await _thread(one), made["assistant_id"], {"input": {}})) == "v1"


class CountingPolicy:
    """A custom auth policy that changes the run it is shown in place (as handlers may), counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def authorize(self, user, resource, action, value):
        if action == "create_run":
            self.calls += 1
            value["kwargs"]["input"]["tags"].append("audited")
        return Filter()


async def test_a_run_made_again_from_the_latest_assistant_asks_the_policy_once(two_processes):
    one, other = two_processes
    made = await assistants.create(one, SYSTEM, None, "echo", config={"configurable": {"model": "v1"}}, context={},
                                   metadata={}, name="cached", description=None, if_exists="raise")
    aid = made["assistant_id"]
    await runs.create(one, SYSTEM, await _thread(one), aid, {"input": {}})
    await assistants.update(other, SYSTEM, aid, {"config": {"configurable": {"model": "v2"}}})
    policy = CountingPolicy()
    run = await runs.create(one, Context(policy=policy), await _thread(one), aid, {"input": {"tags": []}})
    assert (_model(run), run["kwargs"]["input"]["tags"], policy.calls) == ("v2", ["audited"], 1)


async def test_an_assistant_deleted_elsewhere_is_not_found_on_a_busy_thread_too(two_processes):
    one, other = two_processes
    made = await assistants.create(one, SYSTEM, None, "echo", config={}, context={}, metadata={}, name="cached",
                                   description=None, if_exists="raise")
    thread = await _thread(one)
    await runs.create(one, SYSTEM, thread, made["assistant_id"], {"input": {}})  # pending: the thread is busy
    await assistants.delete(other, SYSTEM, made["assistant_id"])
    with pytest.raises(NotFound):  # not a 409 for the run in flight
        await runs.create(one, SYSTEM, thread, made["assistant_id"], {"input": {}, "multitask_strategy": "reject"})


async def test_a_run_claimed_as_it_is_created_runs_the_latest_assistant(two_processes):
    """With a queue worker, a run on an idle thread is claimed by the statement that creates it: a stale cached
    assistant gives the slot back, and the run is made (and executed) from the latest one."""
    one, other = two_processes
    worker = QueueWorker(one)
    await worker.start()
    try:
        made = await assistants.create(one, SYSTEM, None, "counter_factory", config={"configurable": {"node": "a"}},
                                       context={}, metadata={}, name="cached", description=None, if_exists="raise")
        aid, thread = made["assistant_id"], await _thread(one)
        assert (await _wait(one, thread, aid))["log"] == ["a"]
        await assistants.update(other, SYSTEM, aid, {"config": {"configurable": {"node": "b"}}})
        assert (await _wait(one, thread, aid))["log"] == ["a", "b"]
        await assistants.update(other, SYSTEM, aid, {"config": {"configurable": {"node": "c"}}})
        assert (await _wait(one, None, aid))["log"] == ["c"]  # stateless: a thread of its own
        assert worker._reserved == 0
    finally:
        await worker.stop()


async def _wait(rt, thread_id, assistant_id) -> dict:
    _, result = await runs.wait(rt, SYSTEM, thread_id, assistant_id, {"input": {}}, asyncio.Future())
    assert result["status"] == "success", result
    return result["output"]
