"""A process creates runs from the assistants it has read before (no read per run), yet every run is made from the
assistant's latest version: another process's update, version switch or delete is seen by the statement that
creates the run."""
from __future__ import annotations

import pytest

from agent_server.config import load_settings
from agent_server.errors import NotFound
from agent_server.runtime import Runtime
from agent_server.services import SYSTEM, assistants, runs, threads
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
