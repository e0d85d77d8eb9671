"""State and history as the official server answers them: `before` as a checkpoint config, the storage
report per channel, state updates refused while runs are in flight, factory graphs built with the
thread's assistant config."""
from __future__ import annotations

import pytest
from langgraph_sdk.errors import ConflictError

from run_helpers import SLOW, new_thread, run_status, slow, started


async def counted_thread(client, runs: int = 3) -> str:
    """A thread of the counter graph ({count: int, log: list}) after `runs` runs."""
    thread_id = await new_thread(client)
    for i in range(runs):
        await client.runs.wait(thread_id, "counter", input={"count": i * 10})
    return thread_id


def indexes(history: list[dict], states: list[dict]) -> list[int]:
    ids = [s["checkpoint_id"] for s in history]
    return [ids.index(s["checkpoint_id"]) for s in states]


async def test_history_before_a_checkpoint_config(client, http):
    thread_id = await counted_thread(client)
    history = await client.threads.get_history(thread_id, limit=100)
    assert len(history) == 9
    before = {"configurable": {"checkpoint_id": history[3]["checkpoint_id"]}}

    def post(**body):
        response = http.post(f"/threads/{thread_id}/history", json={"before": before, **body})
        assert response.status_code == 200, response.text
        return indexes(history, response.json())

    assert post(limit=100) == [4, 5, 6, 7, 8]  # older only, newest first
    assert post(limit=2) == [4, 5]
    loops = [i for i, s in enumerate(history) if i > 3 and s["metadata"]["source"] == "loop"]
    assert post(limit=100, metadata={"source": "loop"}) == loops == [4, 6, 7]
    # the SDK's spelling (a flat checkpoint) and GET ?before= stay as they were
    flat = http.post(f"/threads/{thread_id}/history", json={"before": before["configurable"], "limit": 100})
    assert indexes(history, flat.json()) == [4, 5, 6, 7, 8]
    by_get = http.get(f"/threads/{thread_id}/history", params={"before": history[3]["checkpoint_id"], "limit": 100})
    assert indexes(history, by_get.json()) == [4, 5, 6, 7, 8]


async def test_storage_lists_every_channel_inline_values_included(http, client):
    thread_id = await counted_thread(client)
    usage = http.get(f"/threads/{thread_id}/storage").json()
    channels = usage["channel_values"]["by_channel"]
    # as the official server counts them: every version written, the consumed ones (no value left) at 0 bytes;
    # count: the input's and the node's value in each of the 3 runs; log: the node's, once per run
    assert {name: c["versions"] for name, c in channels.items()} == {
        "__start__": 6, "branch:to:step": 6, "count": 6, "log": 3,
    }
    assert channels["count"]["bytes"] > 0 and channels["log"]["bytes"] > 0
    assert channels["branch:to:step"]["bytes"] == 0
    for channel in channels.values():
        assert set(channel) == {"versions", "bytes"}
    values = usage["channel_values"]
    assert values["count"] == sum(c["versions"] for c in channels.values())
    assert values["bytes"] == sum(c["bytes"] for c in channels.values())
    parts = usage["checkpoints"]["bytes"] + values["bytes"] + usage["pending_writes"]["bytes"]
    assert usage["total_bytes"] == parts


async def test_update_state_while_a_run_is_running_or_pending_is_a_conflict(client):
    thread_id = await new_thread(client)
    running = await client.runs.create(thread_id, SLOW, input={}, config=slow(0.5))
    await started(client, thread_id, running["run_id"])
    with pytest.raises(ConflictError) as exc:
        await client.threads.update_state(thread_id, {"steps": ["x"]})
    assert f"Thread {thread_id} has in-flight runs: " in str(exc.value)
    assert running["run_id"] in str(exc.value)

    pending = await client.runs.create(thread_id, SLOW, input={}, config=slow(0.05), multitask_strategy="enqueue")
    await client.runs.join(thread_id, running["run_id"])
    if (await client.runs.get(thread_id, pending["run_id"]))["status"] in ("pending", "running"):
        with pytest.raises(ConflictError):
            await client.threads.update_state(thread_id, {"steps": ["y"]})
    await client.runs.join(thread_id, pending["run_id"])
    await client.threads.update_state(thread_id, {"steps": ["z"]})  # nothing in flight: accepted
    assert (await client.threads.get_state(thread_id))["values"]["steps"][-1] == "z"


async def test_update_state_while_a_delayed_run_is_pending_is_a_conflict(client):
    thread_id = await new_thread(client)
    delayed = await client.runs.create(thread_id, SLOW, input={}, config=slow(0.01), after_seconds=600)
    with pytest.raises(ConflictError) as exc:
        await client.threads.update_state(thread_id, {"steps": ["p"]})
    assert f"Thread {thread_id} has in-flight runs: " in str(exc.value) and "'pending'" in str(exc.value)
    assert (await client.threads.get_state(thread_id))["values"] == {}  # nothing written
    await client.runs.cancel(thread_id, delayed["run_id"])
    await run_status(client, thread_id, delayed["run_id"], {"interrupted"})
    await client.threads.update_state(thread_id, {"steps": ["p"]})
    assert (await client.threads.get_state(thread_id))["values"] == {"steps": ["p"]}


async def test_factory_graph_state_is_updated_with_the_threads_assistant_config(client, http):
    assistant = await client.assistants.create("counter_factory", config={"configurable": {"node": "alpha"}})
    thread_id = await new_thread(client)
    assert await client.runs.wait(thread_id, assistant["assistant_id"], input={"count": 5}) == {
        "count": 6, "log": ["alpha"],
    }
    assert (await client.threads.get(thread_id))["config"] == {"configurable": {"node": "alpha"}}

    await client.threads.update_state(thread_id, {"count": 40}, as_node="alpha")
    state = await client.threads.get_state(thread_id)
    assert state["values"] == {"count": 40, "log": ["alpha"]} and state["next"] == []
    assert state["metadata"]["source"] == "update"
    history = await client.threads.get_history(thread_id, limit=2)
    assert [s["values"]["count"] for s in history] == [40, 6]
    # the default graph's node is not this assistant's graph
    response = http.post(f"/threads/{thread_id}/state", json={"values": {"count": 41}, "as_node": "step"})
    assert response.status_code == 400 and response.json() == {"detail": "Node step does not exist"}


async def test_factory_graph_uses_the_assistant_config_the_threads_run_had(client, http):
    """As the official server: the thread keeps the config of the assistant its run used; the run's own
    configurable does not count, nor a later change to the assistant."""
    assistant = await client.assistants.create("counter_factory", config={"configurable": {"node": "alpha"}})
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, assistant["assistant_id"], input={"count": 1}, config={"configurable": {"x": 1}})
    await client.assistants.update(assistant["assistant_id"], config={"configurable": {"node": "gamma"}})

    def update(thread_id, node):
        return http.post(f"/threads/{thread_id}/state", json={"values": {"count": 2}, "as_node": node}).status_code

    assert (update(thread_id, "gamma"), update(thread_id, "alpha")) == (400, 200)
    updated = (await client.threads.get_history(thread_id, limit=1, metadata={"source": "update"}))[0]
    assert updated["metadata"]["node"] == "alpha"

    other = await new_thread(client)
    await client.runs.wait(other, "counter_factory", input={"count": 1}, config={"configurable": {"node": "beta"}})
    assert (await client.threads.get(other))["config"] == {"configurable": {}}
    assert (update(other, "beta"), update(other, "step")) == (400, 200)
