"""Thread state and history: get (latest, at a checkpoint, with subgraphs), update, history filters."""
from __future__ import annotations

import uuid

import pytest
from langgraph_sdk.errors import BadRequestError, NotFoundError

HI = {"messages": [{"role": "user", "content": "hi"}]}
STATE_FIELDS = {
    "values", "next", "tasks", "metadata", "created_at", "checkpoint", "parent_checkpoint", "interrupts",
    "checkpoint_id", "parent_checkpoint_id",
}
EMPTY_STATE = {
    "values": {}, "next": [], "tasks": [], "metadata": None, "created_at": None, "checkpoint": None,
    "parent_checkpoint": None, "interrupts": [], "checkpoint_id": None, "parent_checkpoint_id": None,
}


async def echo_thread(client) -> str:
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "echo", input=HI)
    return thread["thread_id"]


async def test_fresh_thread_has_an_empty_state_and_no_history(client, http):
    thread_id = (await client.threads.create())["thread_id"]
    assert await client.threads.get_state(thread_id) == EMPTY_STATE
    assert await client.threads.get_history(thread_id) == []
    assert http.get(f"/threads/{thread_id}/history").json() == []


async def test_state_after_a_run_shows_values_and_checkpoints(client):
    thread_id = await echo_thread(client)
    state = await client.threads.get_state(thread_id)
    assert set(state) == STATE_FIELDS
    assert [m["content"] for m in state["values"]["messages"]] == ["hi", "echo: hi"]
    assert state["next"] == [] and state["tasks"] == [] and state["interrupts"] == []
    assert state["checkpoint"] == {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": state["checkpoint_id"]}
    assert state["parent_checkpoint"]["checkpoint_id"] == state["parent_checkpoint_id"]
    assert state["metadata"]["source"] == "loop" and state["metadata"]["step"] == 1
    assert state["created_at"]


async def test_state_at_a_checkpoint_by_get_and_post(client):
    thread_id = await echo_thread(client)
    history = await client.threads.get_history(thread_id, limit=10)
    earlier = history[1]
    by_id = await client.threads.get_state(thread_id, checkpoint_id=earlier["checkpoint_id"])
    by_config = await client.threads.get_state(thread_id, checkpoint={"checkpoint_id": earlier["checkpoint_id"]})
    for state in (by_id, by_config):
        assert state["checkpoint_id"] == earlier["checkpoint_id"]
        assert state["values"] == earlier["values"] and state["next"] == ["echo"]
        assert state["tasks"][0]["name"] == "echo"


async def test_state_at_an_unknown_checkpoint_is_empty(client):
    thread_id = await echo_thread(client)
    checkpoint_id = "1f000000-0000-6000-8000-000000000000"
    state = await client.threads.get_state(thread_id, checkpoint_id=checkpoint_id)
    assert state["values"] == {} and state["next"] == [] and state["created_at"] is None
    assert state["checkpoint_id"] == checkpoint_id
    assert state["checkpoint"] == {"checkpoint_id": checkpoint_id, "thread_id": thread_id}


async def test_state_of_unknown_thread_is_404(client, http):
    with pytest.raises(NotFoundError):
        await client.threads.get_state(str(uuid.uuid4()))
    with pytest.raises(NotFoundError):
        await client.threads.get_history(str(uuid.uuid4()))
    assert http.get("/threads/not-a-uuid/state").status_code == 422
    assert http.post(f"/threads/{uuid.uuid4()}/state/checkpoint", json={}).status_code == 422


async def test_state_with_subgraphs_shows_the_child_state_of_a_pending_task(client):
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "subgraph", input={"log": []}, interrupt_before=["child"])
    [task] = (await client.threads.get_state(thread["thread_id"]))["tasks"]
    assert task["name"] == "child" and task["state"] is None
    assert task["checkpoint"] == {"thread_id": thread["thread_id"], "checkpoint_ns": f"child:{task['id']}"}
    [task] = (await client.threads.get_state(thread["thread_id"], subgraphs=True))["tasks"]
    assert task["checkpoint"] is None and task["state"]["values"] == {}  # the child has not started yet


async def test_interrupted_state_lists_interrupts_and_pending_task(client):
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "interrupt", input={"topic": "cats"})
    state = await client.threads.get_state(thread["thread_id"])
    assert state["next"] == ["review"]
    [task] = state["tasks"]
    assert task["name"] == "review" and task["path"] == ["__pregel_pull", "review"]
    assert task["interrupts"] == state["interrupts"]
    assert state["interrupts"][0]["value"] == {"question": "approve the draft?", "draft": "draft about cats"}
    assert set(state["interrupts"][0]) == {"value", "id"}


async def test_update_state_adds_a_checkpoint_and_refreshes_the_thread(client):
    thread_id = await echo_thread(client)
    result = await client.threads.update_state(thread_id, {"messages": [{"type": "human", "content": "more"}]})
    checkpoint = result["checkpoint"]
    assert checkpoint["thread_id"] == thread_id and checkpoint["checkpoint_ns"] == ""
    assert result["checkpoint_id"] == checkpoint["checkpoint_id"] and result["configurable"] == checkpoint
    state = await client.threads.get_state(thread_id)
    assert state["checkpoint_id"] == checkpoint["checkpoint_id"]
    assert state["metadata"]["source"] == "update"
    assert [m["content"] for m in state["values"]["messages"]][-1] == "more"
    thread = await client.threads.get(thread_id)
    assert thread["values"] == state["values"]
    assert thread["state_updated_at"] > thread["created_at"]


async def test_update_state_as_node_decides_what_runs_next(client):
    thread = await client.threads.create(graph_id="interrupt")
    await client.threads.update_state(thread["thread_id"], {"topic": "dogs", "draft": "d"}, as_node="draft")
    state = await client.threads.get_state(thread["thread_id"])
    assert state["next"] == ["review"] and state["values"] == {"topic": "dogs", "draft": "d"}
    assert state["metadata"]["graph_id"] == "interrupt"
    # paused before a node, as the official server reports it
    assert (await client.threads.get(thread["thread_id"]))["status"] == "interrupted"


async def test_update_state_from_an_earlier_checkpoint_forks(client):
    thread_id = await echo_thread(client)
    first = (await client.threads.get_history(thread_id, limit=10))[-1]  # the input checkpoint
    result = await client.threads.update_state(
        thread_id, {"messages": [{"type": "human", "content": "fork"}]}, checkpoint_id=first["checkpoint_id"]
    )
    state = await client.threads.get_state(thread_id)
    assert state["checkpoint_id"] == result["checkpoint"]["checkpoint_id"]
    assert state["parent_checkpoint_id"] == first["checkpoint_id"]
    assert [m["content"] for m in state["values"]["messages"]] == ["fork"]


async def test_update_state_as_the_interrupted_node_clears_the_interrupt(client):
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "interrupt", input={"topic": "cats"})
    await client.threads.update_state(thread["thread_id"], {"approved": False}, as_node="review")
    got = await client.threads.get(thread["thread_id"])
    assert got["interrupts"] == {} and got["status"] == "interrupted"  # still paused, before `finish`
    assert (await client.threads.get_state(thread["thread_id"]))["next"] == ["finish"]


async def test_update_state_that_completes_the_graph_leaves_the_thread_idle(client):
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "interrupt", input={"topic": "cats"})
    await client.threads.update_state(thread["thread_id"], {"final": "done"}, as_node="finish")
    got = await client.threads.get(thread["thread_id"])
    assert got["status"] == "idle" and got["interrupts"] == {} and got["values"]["final"] == "done"


async def test_update_state_errors(client, http):
    with pytest.raises(NotFoundError):
        await client.threads.update_state(str(uuid.uuid4()), {"x": 1})
    fresh = await client.threads.create()
    with pytest.raises(BadRequestError):  # no graph known for a thread that never ran
        await client.threads.update_state(fresh["thread_id"], {"messages": []})
    thread_id = await echo_thread(client)
    r = http.post(f"/threads/{thread_id}/state", json={"values": {"messages": []}, "as_node": "nope"})
    assert r.status_code == 400 and r.json() == {"detail": "Node nope does not exist"}
    assert http.post(f"/threads/{thread_id}/state", json={"values": 3}).status_code == 422
    assert http.post(f"/threads/{thread_id}/state", content=b"nope").status_code == 422


async def test_history_is_newest_first_and_pages_with_before(client, http):
    thread_id = await echo_thread(client)
    history = await client.threads.get_history(thread_id, limit=10)
    assert [s["metadata"]["step"] for s in history] == [1, 0, -1]
    assert [s["checkpoint_id"] for s in await client.threads.get_history(thread_id, limit=2)] == [
        s["checkpoint_id"] for s in history[:2]
    ]
    older = await client.threads.get_history(thread_id, limit=10, before={"checkpoint_id": history[0]["checkpoint_id"]})
    assert older == history[1:]
    via_get = http.get(f"/threads/{thread_id}/history", params={"limit": 10, "before": history[0]["checkpoint_id"]})
    assert via_get.json() == history[1:]
    assert len(http.get(f"/threads/{thread_id}/history").json()) == 1  # the official server's default limit
    assert len(http.post(f"/threads/{thread_id}/history", json={}).json()) == 1


async def test_history_filters_by_metadata_and_checkpoint(client):
    thread_id = await echo_thread(client)
    inputs = await client.threads.get_history(thread_id, limit=10, metadata={"source": "input"})
    assert [s["metadata"]["step"] for s in inputs] == [-1]
    scoped = await client.threads.get_history(thread_id, limit=10, checkpoint={"checkpoint_ns": ""})
    assert len(scoped) == 3


async def test_history_rejects_bad_limits(client, http):
    thread_id = (await client.threads.create())["thread_id"]
    assert http.get(f"/threads/{thread_id}/history", params={"limit": 0}).status_code == 422
    assert http.post(f"/threads/{thread_id}/history", json={"limit": "x"}).status_code == 422
