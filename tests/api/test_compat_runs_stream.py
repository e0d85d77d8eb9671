"""Runs as the official server answers them: commands on an interrupted thread (their output, the state and
the thread's status after them) and the payloads of the `debug` stream mode."""
from __future__ import annotations

import httpx

from run_helpers import collect, new_thread

QUESTION = "approve the draft?"


def asked(output: dict) -> list:
    """The values of the interrupts in a run's output."""
    return [i["value"] for i in output["__interrupt__"]]


async def interrupted_thread(client) -> str:
    """A thread of the interrupt graph, its `review` node waiting on interrupt() about a draft about cats."""
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "interrupt", input={"topic": "cats"})
    return thread_id


async def wait(server, thread_id: str, **body) -> dict:
    """POST /threads/{id}/runs/wait with a body the SDK cannot send (its stream_mode)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": "interrupt", **body})
    assert response.status_code == 200, response.text
    return response.json()


# ---- a command on an interrupted thread ---------------------------------------------------------------

async def test_command_update_and_goto_on_an_interrupted_thread_interrupts_again(client):
    # goto the interrupted node: the update applies, `review` runs again and asks again about the new state
    thread_id = await interrupted_thread(client)
    output = await client.runs.wait(
        thread_id, "interrupt", command={"update": {"topic": "dogs", "draft": "new draft"}, "goto": "review"}
    )
    assert {k: v for k, v in output.items() if k != "__interrupt__"} == {"topic": "dogs", "draft": "new draft"}
    assert asked(output) == [{"question": QUESTION, "draft": "new draft"}]

    # goto another node: it runs, and the pending `review` interrupts again; the output is the values
    # streamed with that interrupt, the thread stays interrupted on `review` (as the official server)
    thread_id = await interrupted_thread(client)
    output = await client.runs.wait(thread_id, "interrupt", command={"update": {"topic": "dogs"}, "goto": "draft"})
    assert output["topic"] == "dogs" and output["draft"] == "draft about cats"
    assert asked(output) == [{"question": QUESTION, "draft": "draft about cats"}]
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["review"]
    (task,) = state["tasks"]
    assert task["name"] == "review" and [i["value"] for i in task["interrupts"]] == asked(output)
    assert [i["value"] for i in state["interrupts"]] == asked(output)
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    assert thread["values"] == {"topic": "dogs", "draft": "draft about cats"}
    assert [i["value"] for i in thread["interrupts"][task["id"]]] == asked(output)
    (last, _) = await client.runs.list(thread_id)
    assert last["status"] == "success"


async def test_command_goto_send_and_update_pairs(client):
    # goto {"node", "input"} is a Send: `review` runs on that input, then the pending `review` again
    thread_id = await interrupted_thread(client)
    output = await client.runs.wait(thread_id, "interrupt", command={"goto": {"node": "review", "input": {"draft": "sent"}}})
    assert output == {"__interrupt__": output["__interrupt__"]}  # two interrupt chunks: merged, without values
    assert asked(output) == [{"question": QUESTION, "draft": "sent"}, {"question": QUESTION, "draft": "draft about cats"}]
    assert (await client.threads.get(thread_id))["status"] == "interrupted"

    # an update as [key, value] pairs
    thread_id = await interrupted_thread(client)
    output = await client.runs.wait(thread_id, "interrupt", command={"update": [["topic", "dogs"]], "goto": "review"})
    assert output["topic"] == "dogs"
    assert (await client.threads.get_state(thread_id))["values"]["topic"] == "dogs"


async def test_wait_output_is_what_the_stream_mode_showed(server, client):
    # only updates: the interrupt chunk as it came, without values
    thread_id = await new_thread(client)
    output = await wait(server, thread_id, input={"topic": "cats"}, stream_mode="updates")
    assert list(output) == ["__interrupt__"]
    assert asked(output) == [{"question": QUESTION, "draft": "draft about cats"}]

    # values and updates: both chunks carry the interrupt, merged into one list
    thread_id = await new_thread(client)
    output = await wait(server, thread_id, input={"topic": "cats"}, stream_mode=["values", "updates"])
    assert list(output) == ["__interrupt__"] and len(output["__interrupt__"]) == 2

    # neither: what waits for an answer on the thread
    thread_id = await new_thread(client)
    output = await wait(server, thread_id, input={"topic": "cats"}, stream_mode="custom")
    assert list(output) == ["__interrupt__"]
    assert asked(output) == [{"question": QUESTION, "draft": "draft about cats"}]
    output = await wait(server, thread_id, command={"update": {"topic": "dogs"}, "goto": "draft"}, stream_mode="custom")
    assert asked(output) == [{"question": QUESTION, "draft": "draft about cats"}]
    assert (await client.threads.get(thread_id))["status"] == "interrupted"
    # and a run that ends: the thread's values
    thread_id = await interrupted_thread(client)
    output = await wait(server, thread_id, command={"resume": True}, stream_mode="custom")
    assert output == {"topic": "cats", "draft": "draft about cats", "approved": True, "final": "draft about cats"}


# ---- debug ------------------------------------------------------------------------------------------------

CHECKPOINT_KEYS = ["config", "parent_config", "values", "metadata", "next", "tasks", "checkpoint", "parent_checkpoint"]


def checkpoint_of(config: dict | None) -> dict | None:
    if config is None:
        return None
    c = config["configurable"]
    return {"checkpoint_id": c["checkpoint_id"], "thread_id": c["thread_id"], "checkpoint_ns": c["checkpoint_ns"]}


async def test_debug_events_are_shaped_as_the_official_servers(client):
    thread_id = await new_thread(client)
    events = await collect(client.runs.stream(thread_id, "subgraph", input={}, stream_mode="debug", stream_subgraphs=True))
    debug = [(name, data) for name, data in events if name.startswith("debug")]
    assert {data["type"] for _, data in debug} == {"checkpoint", "task", "task_result"}
    for name, data in debug:
        assert list(data) == ["step", "timestamp", "type", "payload"]
        payload = data["payload"]
        if data["type"] == "task":
            assert list(payload) == ["id", "name", "input", "triggers", "metadata"]
        elif data["type"] == "task_result":
            assert list(payload) == ["id", "name", "error", "result", "interrupts"]
    root = [d["payload"] for name, d in debug if name == "debug" and d["type"] == "checkpoint"]
    inner = [d["payload"] for name, d in debug if name != "debug" and d["type"] == "checkpoint"]
    assert root and inner
    for payload in root:
        assert list(payload) == CHECKPOINT_KEYS
        assert payload["checkpoint"] == checkpoint_of(payload["config"])
        assert payload["checkpoint"]["thread_id"] == thread_id and payload["checkpoint"]["checkpoint_ns"] == ""
        assert payload["parent_checkpoint"] == checkpoint_of(payload["parent_config"])
    assert root[0]["parent_checkpoint"] is None and root[0]["metadata"]["source"] == "input"
    for before, after in zip(root, root[1:]):
        assert after["parent_checkpoint"] == before["checkpoint"]
    # a checkpoint about to run the subgraph: its task points at the subgraph's checkpoints, not a `state`
    (child,) = [t for p in root for t in p["tasks"] if t["name"] == "child"]
    assert list(child) == ["id", "name", "interrupts", "checkpoint"]
    assert child["checkpoint"]["thread_id"] == thread_id
    assert child["checkpoint"]["checkpoint_ns"].startswith("child:")
    other = [t for p in root for t in p["tasks"] if t["name"] != "child"]
    assert other and all(list(t) == ["id", "name", "interrupts", "state"] and t["state"] is None for t in other)
    # the subgraph's own: in its namespace, with the map of its parents' checkpoints
    for payload in inner:
        assert list(payload) == CHECKPOINT_KEYS
        checkpoint = payload["checkpoint"]
        assert checkpoint["checkpoint_ns"] == child["checkpoint"]["checkpoint_ns"]
        assert checkpoint["checkpoint_id"] == payload["config"]["configurable"]["checkpoint_id"]
        assert set(checkpoint["checkpoint_map"]) == {"", checkpoint["checkpoint_ns"]}
    # the last checkpoint is the thread's state
    state = await client.threads.get_state(thread_id)
    assert root[-1]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]


async def test_debug_checkpoint_of_an_interrupted_run(client):
    thread_id = await new_thread(client)
    events = await collect(client.runs.stream(thread_id, "interrupt", input={"topic": "cats"}, stream_mode="debug"))
    checkpoints = [d["payload"] for name, d in events if name == "debug" and d["type"] == "checkpoint"]
    assert [p["next"] for p in checkpoints] == [["__start__"], ["draft"], ["review"]]
    assert all(list(p) == CHECKPOINT_KEYS for p in checkpoints)
    state = await client.threads.get_state(thread_id)
    assert checkpoints[-1]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    assert checkpoints[-1]["parent_checkpoint"]["checkpoint_id"] == state["parent_checkpoint"]["checkpoint_id"]
    (result,) = [d["payload"] for name, d in events if name == "debug" and d["type"] == "task_result" and d["payload"]["name"] == "review"]
    assert [i["value"] for i in result["interrupts"]] == [{"question": QUESTION, "draft": "draft about cats"}]
