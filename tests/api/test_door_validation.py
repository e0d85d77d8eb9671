"""Issue 10: what a run could only fail on at run time is refused at its creation (422); a graph's default
assistant cannot be deleted (409); a cancelled run leaves its thread in one state, pending or running."""
from __future__ import annotations

import uuid

import pytest

from run_helpers import FINISHED, HI, new_thread, run_status, slow, started


def _run(http, thread_id, **body):
    return http.post(f"/threads/{thread_id}/runs", json={"assistant_id": "echo", "input": HI, **body})


def _detail(r) -> str:
    return str(r.json())


# ---- 8: 422 at creation --------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["interrupt_before", "interrupt_after"])
async def test_interrupt_on_a_node_the_graph_does_not_have_is_422(client, http, field):
    thread_id = await new_thread(client)
    r = _run(http, thread_id, **{field: ["echo", "nope"]})
    assert r.status_code == 422, r.text
    assert "nope" in _detail(r) and field in _detail(r)
    assert (await client.runs.list(thread_id)) == []  # nothing queued
    r = http.post("/runs/wait", json={"assistant_id": "echo", "input": HI, field: ["nope"]})
    assert r.status_code == 422, r.text
    for value in (["echo"], "*"):  # the graph's own nodes, or all of them
        r = http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": "echo", "input": HI, field: value})
        assert r.status_code == 200, r.text
        if field == "interrupt_before":  # (after echo, its last node, there is nothing to stop before)
            assert (await client.threads.get(thread_id))["status"] == "interrupted"


@pytest.mark.parametrize(
    "config, word",
    [
        ({"recursion_limit": 0}, "recursion_limit"),
        ({"recursion_limit": -3}, "recursion_limit"),
        ({"recursion_limit": "10"}, "recursion_limit"),
        ({"recursion_limit": 2.5}, "recursion_limit"),
        ({"recursion_limit": True}, "recursion_limit"),
        ({"tags": ["a", 1]}, "tags"),
        ({"run_name": 5}, "run_name"),
    ],
)
async def test_wrong_typed_config_is_422(client, http, config, word):
    thread_id = await new_thread(client)
    r = _run(http, thread_id, config=config)
    assert r.status_code == 422, r.text
    assert word in _detail(r)
    r = http.post(
        f"/threads/{thread_id}/runs/wait",
        json={"assistant_id": "echo", "input": HI,
              "config": {"recursion_limit": 5, "tags": ["a"], "run_name": "n", "metadata": {}, "configurable": {}}},
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("webhook", ["ftp://example.com/hook", "file:///etc/passwd", "example.com/hook", "http://"])
async def test_webhook_that_is_not_http_is_422(client, http, webhook):
    thread_id = await new_thread(client)
    r = _run(http, thread_id, webhook=webhook)
    assert r.status_code == 422, r.text
    assert "webhook" in _detail(r)
    # (a well-formed URL is then checked against the `webhooks` policy: tests/api/test_webhooks.py)


# ---- 9: a graph's default assistant stays ------------------------------------------------------------------

async def test_deleting_a_system_assistant_is_409_and_it_still_answers(client, http):
    [system] = await client.assistants.search(graph_id="echo", metadata={"created_by": "system"})
    r = http.delete(f"/assistants/{system['assistant_id']}")
    assert r.status_code == 409, r.text
    assert "default" in r.text.lower()
    assert http.get(f"/assistants/{system['assistant_id']}").status_code == 200
    thread_id = await new_thread(client)
    assert http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": "echo", "input": HI}).status_code == 200
    mine = await client.assistants.create("echo", name=f"mine-{uuid.uuid4()}")  # one a user made: deleted
    assert http.delete(f"/assistants/{mine['assistant_id']}").status_code == 204


# ---- 10: a cancelled run leaves its thread in one state ---------------------------------------------------

async def _cancel_and_thread(client, http, thread_id, run_id, action):
    r = http.post(f"/threads/{thread_id}/runs/{run_id}/cancel", params={"wait": "true", "action": action})
    assert r.status_code in (200, 404), r.text  # rollback of a pending run deletes it
    if action == "interrupt":
        assert (await run_status(client, thread_id, run_id, FINISHED, timeout=15))["status"] == "interrupted"
    return await client.threads.get(thread_id)


@pytest.mark.parametrize("action, status, error", [("interrupt", "interrupted", "UserInterrupt"), ("rollback", "idle", "UserRollback")])
async def test_cancelling_a_pending_run_leaves_the_thread_as_cancelling_a_running_one(client, http, action, status, error):
    # running
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "slow", input={}, config=slow(0.3))
    await started(client, thread_id, run["run_id"])
    running = await _cancel_and_thread(client, http, thread_id, run["run_id"], action)
    # pending (scheduled far ahead: never started)
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "slow", input={}, config=slow(0.3), after_seconds=600)
    assert (await client.threads.get(thread_id))["status"] == "busy"
    pending = await _cancel_and_thread(client, http, thread_id, run["run_id"], action)
    assert (running["status"], running["error"]["error"]) == (status, error)
    assert (pending["status"], (pending.get("error") or {}).get("error")) == (status, error)

