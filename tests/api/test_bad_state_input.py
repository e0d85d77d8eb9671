"""Values a graph cannot apply are the caller's mistake (400/422), never a 500; a thread whose run got
such an input still shows its state; a run at an unknown checkpoint is a 404 that leaves the state alone."""
from __future__ import annotations

import uuid

import pytest

from run_helpers import HI

BAD_MESSAGES = [
    5,
    [5],
    [None],
    [[1, 2, 3]],
    True,
    [{"role": "tool", "content": "x"}],  # a tool message without tool_call_id
]


def echo_thread(http) -> str:
    thread_id = http.post("/threads", json={}).json()["thread_id"]
    r = http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": "echo", "input": HI})
    assert r.status_code == 200, r.text
    return thread_id


@pytest.mark.parametrize("messages", BAD_MESSAGES)
def test_bad_values_in_update_state_are_a_client_error(http, messages):
    thread_id = echo_thread(http)
    before = http.get(f"/threads/{thread_id}/state").json()
    r = http.post(f"/threads/{thread_id}/state", json={"values": {"messages": messages}})
    assert r.status_code in (400, 422), r.text
    assert r.json().get("detail") or r.json().get("message")
    after = http.get(f"/threads/{thread_id}/state").json()
    assert after["checkpoint_id"] == before["checkpoint_id"]
    assert after["values"] == before["values"]


@pytest.mark.parametrize("messages", BAD_MESSAGES)
def test_bad_values_in_create_supersteps_are_a_client_error(http, messages):
    thread_id = str(uuid.uuid4())
    r = http.post("/threads", json={
        "thread_id": thread_id,
        "metadata": {"graph_id": "echo"},
        "supersteps": [{"updates": [{"values": {"messages": messages}, "as_node": "echo"}]}],
    })
    assert r.status_code in (400, 422), r.text
    assert http.get(f"/threads/{thread_id}").status_code == 404  # all or nothing


def test_a_thread_whose_run_got_bad_input_still_shows_its_state(http):
    thread_id = http.post("/threads", json={}).json()["thread_id"]
    r = http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": "echo", "input": {"messages": 5}})
    assert r.status_code < 500, r.text
    state = http.get(f"/threads/{thread_id}/state")
    assert state.status_code == 200, state.text
    assert "Unsupported message type" in state.json()["tasks"][0]["error"]  # the step's writes, not applied
    assert http.get(f"/threads/{thread_id}/state", params={"subgraphs": "true"}).status_code == 200
    checkpoint = state.json()["checkpoint"]
    r = http.post(f"/threads/{thread_id}/state/checkpoint", json={"checkpoint": checkpoint})
    assert r.status_code == 200, r.text
    assert http.get(f"/threads/{thread_id}/history").status_code == 200
    # the thread is still usable: a good run goes through
    r = http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": "echo", "input": HI})
    assert r.status_code == 200, r.text
    assert http.get(f"/threads/{thread_id}/state").status_code == 200


@pytest.mark.parametrize("spelling", ["checkpoint_id", "checkpoint"])
def test_a_run_at_an_unknown_checkpoint_is_not_found(http, spelling):
    thread_id = echo_thread(http)
    before = http.get(f"/threads/{thread_id}/state").json()
    other = echo_thread(http)
    for checkpoint_id in [str(uuid.uuid4()), http.get(f"/threads/{other}/state").json()["checkpoint_id"]]:
        at = {"checkpoint_id": checkpoint_id} if spelling == "checkpoint_id" else {"checkpoint": {"checkpoint_id": checkpoint_id}}
        r = http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": "echo", "input": HI, **at})
        assert r.status_code == 404, r.text
        assert checkpoint_id in r.text
    after = http.get(f"/threads/{thread_id}/state").json()
    assert after["checkpoint_id"] == before["checkpoint_id"] and after["values"] == before["values"]
    assert len(http.get(f"/threads/{thread_id}/runs").json()) == 1  # none queued
    # a checkpoint the thread has still works
    earlier = http.post(f"/threads/{thread_id}/history", json={"limit": 10}).json()[1]["checkpoint_id"]
    r = http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": "echo", "input": HI, "checkpoint_id": earlier})
    assert r.status_code == 200, r.text
