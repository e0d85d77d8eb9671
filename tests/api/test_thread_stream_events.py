"""Thread event streams (the v3 protocol): the SDK's `client.threads.stream(...)`, raw SSE readers that
reconnect with `since`, commands and their typed errors; single host and split mode."""
from __future__ import annotations

import asyncio
import json
import threading
import uuid

import httpx

ALL = ["values", "updates", "messages", "tools", "custom", "lifecycle", "input", "tasks", "checkpoints"]


async def _chat(client) -> tuple[str, list[str], dict]:
    """A chat run through the SDK: (thread id, the streamed messages' texts, the output)."""
    async with client.threads.stream(assistant_id="chat") as thread:
        await thread.run.start(input={"messages": [{"role": "user", "content": "hi"}]})
        messages = [m async for m in thread.messages]  # ends with the run
        texts = [await m.text for m in messages]
        output = await asyncio.wait_for(thread.output, 30)
        return thread.thread_id, texts, output


async def test_sdk_streams_messages_and_output(client):
    thread_id, texts, output = await _chat(client)
    assert texts == ["Hello there, this answer streams token by token."]
    assert [m["type"] for m in output["messages"]] == ["human", "ai"]
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_sdk_values_and_interrupt_answered(client):
    async with client.threads.stream(assistant_id="interrupt") as thread:
        await thread.run.start(input={"topic": "cats"})
        snapshots = [v async for v in thread.values]  # ends at the interrupt
        assert snapshots[-1]["draft"] == "draft about cats"
        for _ in range(100):
            if thread.interrupts:
                break
            await asyncio.sleep(0.05)
        assert thread.interrupted and len(thread.interrupts) == 1
        await thread.run.respond(True)
        output = await asyncio.wait_for(thread.output, 30)
    assert output["final"] == "draft about cats" and output["approved"] is True


def _read(http: httpx.Client, thread_id: str, body: dict, stop, opened: threading.Event | None = None) -> list[dict]:
    """Events of one SSE connection until `stop(events)`; the connection is then dropped. `opened` is set once
    the server answered (the thread is followed from then on)."""
    events = []
    with http.stream("POST", f"/threads/{thread_id}/stream/events", json=body) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        if opened is not None:
            opened.set()
        last_id = None
        for line in r.iter_lines():
            if line.startswith("id: "):
                last_id = line[4:]
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
            if not line and events and events[-1].get("_id_checked") is None and last_id is not None:
                assert last_id == str(events[-1]["seq"])  # the SSE id is the event's number
                events[-1]["_id_checked"] = True
                if stop(events):
                    break
    return [{k: v for k, v in e.items() if k != "_id_checked"} for e in events]


def _root_end(events: list[dict]) -> bool:
    e = events[-1]
    return e["method"] == "lifecycle" and not e["params"]["namespace"] and e["params"]["data"]["event"] in ("completed", "failed")


def _command(http: httpx.Client, thread_id: str, method: str, params: dict, command_id: int = 1) -> dict:
    r = http.post(f"/threads/{thread_id}/commands", json={"id": command_id, "method": method, "params": params})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == command_id
    return r.json()


def test_reconnecting_reader_resumes_from_the_last_number_it_saw(http):
    thread_id = str(uuid.uuid4())
    started = _command(http, thread_id, "run.start", {"assistant_id": "slow", "input": {}, "config": {"configurable": {"delay": 0.1}}})
    assert started["type"] == "success" and uuid.UUID(started["result"]["run_id"])
    assert started["meta"]["applied_through_seq"] >= 0
    first = _read(http, thread_id, {"channels": ALL}, lambda events: len(events) == 4)
    rest = _read(http, thread_id, {"channels": ALL, "since": first[-1]["seq"]}, _root_end)
    whole = _read(http, thread_id, {"channels": ALL}, _root_end)
    assert [e["seq"] for e in first + rest] == [e["seq"] for e in whole]  # nothing missed, nothing twice
    assert [e["seq"] for e in whole] == sorted({e["seq"] for e in whole})
    assert first + rest == whole
    assert whole[0]["method"] == "lifecycle" and whole[0]["params"]["data"]["event"] == "running"  # as official
    steps = [e["params"]["node"] for e in whole if e["method"] == "updates"]
    assert steps == [f"step{i}" for i in range(1, 6)]
    assert whole[-1]["params"]["data"] == {"event": "completed", "graph_name": "slow"}


async def test_runs_of_the_runs_api_appear_in_an_open_stream(client, http):
    thread_id = (await client.threads.create())["thread_id"]
    opened = threading.Event()
    reading = asyncio.create_task(asyncio.to_thread(_read, http, thread_id, {"channels": ALL}, _root_end, opened))
    assert await asyncio.to_thread(opened.wait, 10)
    run = await client.runs.create(thread_id, "slow", input={}, stream_mode=["updates"], config={"configurable": {"delay": 0.05}})
    events = await asyncio.wait_for(reading, 30)
    # what the run streams (its own modes, as on the official server), between its lifecycle events
    assert [e["params"].get("node") for e in events if e["method"] == "updates"] == [f"step{i}" for i in range(1, 6)]
    assert events[0]["params"]["data"] == {"event": "running", "graph_name": "slow"}
    assert events[-1]["params"]["data"] == {"event": "completed", "graph_name": "slow"}
    assert {e["method"] for e in events} == {"lifecycle", "updates"}
    assert events[1]["params"]["data"] == {"steps": ["step1"]}  # the node's values, as the official server's
    rest = _read(http, thread_id, {"channels": ALL, "since": events[2]["seq"]}, _root_end)
    assert rest == events[3:]  # resumable with since
    await client.runs.join(thread_id, run["run_id"])
    # a later run through /runs/wait (values by default) on the same thread, still followed
    await client.runs.wait(thread_id, "echo", input={"messages": [{"role": "user", "content": "hi"}]})
    later = _read(http, thread_id, {"channels": ["values", "lifecycle"], "since": events[-1]["seq"]}, _root_end)
    assert [e["method"] for e in later] == ["lifecycle", "values", "values", "lifecycle"]
    assert later[-2]["params"]["data"]["messages"][-1]["content"] == "echo: hi"


async def test_interrupt_shapes_as_the_official_server(client, http):
    """The shapes aligned with the official server (tests/compat/thread_stream_compare.py): the root runs, asks
    (input.requested), says interrupted at once, then its last values; resumed, it runs again."""
    thread_id = (await client.threads.create())["thread_id"]
    opened = threading.Event()
    body = {"channels": ["values", "lifecycle", "input"]}
    reading = asyncio.create_task(asyncio.to_thread(_read, http, thread_id, body, lambda ev: len(ev) == 6, opened))
    assert await asyncio.to_thread(opened.wait, 10)
    await client.runs.create(thread_id, "interrupt", input={"topic": "cats"})
    events = await asyncio.wait_for(reading, 30)
    shape = [(e["method"], e["params"]["data"].get("event")) for e in events]
    assert shape == [("lifecycle", "running"), ("values", None), ("values", None), ("input.requested", None),
                     ("lifecycle", "interrupted"), ("values", None)]
    asked = events[3]["params"]["data"]
    assert set(asked) == {"interrupt_id", "payload"} and asked["payload"]["draft"] == "draft about cats"
    assert set(events[3]) == {"type", "event_id", "seq", "method", "params"} and events[3]["type"] == "event"
    answer = _command(http, thread_id, "input.respond", {"interrupt_id": asked["interrupt_id"], "namespace": [], "response": True})
    assert answer["type"] == "success" and answer["result"] == {}
    rest = _read(http, thread_id, {**body, "since": events[-1]["seq"]}, _root_end)
    assert [e["params"]["data"].get("event") for e in rest if e["method"] == "lifecycle"] == ["running", "completed"]
    assert rest[-2]["params"]["data"]["final"] == "draft about cats"
    missing = _command(http, thread_id, "run.start", {})
    assert missing["error"] == "invalid_argument" and missing["message"] == "run.start requires an assistant_id."


async def test_runs_of_a_thread_nobody_follows_log_no_events(client, http):
    thread_id = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread_id, "echo", input={"messages": [{"role": "user", "content": "hi"}]})
    answer = _command(http, thread_id, "subscription.subscribe", {"channels": ["values"]})
    assert answer["meta"]["applied_through_seq"] == 0  # nothing written for that run
    await client.runs.wait(thread_id, "echo", input={"messages": [{"role": "user", "content": "again"}]})
    assert _command(http, thread_id, "subscription.subscribe", {"channels": ["values"]})["meta"]["applied_through_seq"] > 0


def test_filters_by_channel_and_namespace(http):
    thread_id = str(uuid.uuid4())
    _command(http, thread_id, "run.start", {"assistant_id": "subgraph", "input": {}})
    everything = _read(http, thread_id, {"channels": ALL}, _root_end)
    updates = _read(http, thread_id, {"channels": ["updates", "lifecycle"], "namespaces": [[]], "depth": 0}, _root_end)
    assert {e["method"] for e in updates} == {"updates", "lifecycle"}
    assert all(e["params"]["namespace"] == [] for e in updates)
    nested = [e for e in everything if e["params"]["namespace"]]
    assert nested and {e["params"]["namespace"][0].split(":")[0] for e in nested} == {"child"}
    only_inner = _read(http, thread_id, {"channels": ["updates"], "namespaces": [["child"]]}, lambda ev: len(ev) == 2)
    assert [e["params"]["node"] for e in only_inner] == ["inner_a", "inner_b"]
    tree = _command(http, thread_id, "agent.getTree", {})["result"]["tree"]
    assert tree["namespace"] == [] and tree["status"] == "completed" and tree["graph_name"] == "subgraph"
    assert [c["namespace"][0].split(":")[0] for c in tree["children"]] == ["child"]


def test_commands_answer_typed_errors(http):
    thread_id = str(uuid.uuid4())
    assert _command(http, thread_id, "nope", {})["error"] == "unknown_command"
    assert _command(http, thread_id, "run.start", {})["error"] == "invalid_argument"
    assert _command(http, thread_id, "run.start", {"assistant_id": "no-such-graph"})["error"] == "invalid_argument"
    answer = _command(http, thread_id, "input.respond", {"interrupt_id": "x", "namespace": [], "response": 1})
    assert answer["type"] == "error" and answer["error"] == "no_such_interrupt"
    assert _command(http, thread_id, "agent.getTree", {})["error"] == "no_such_run"
    r = http.post(f"/threads/{thread_id}/commands", json={"method": "run.start"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_argument"


def test_stream_requests_are_checked(http):
    thread_id = str(uuid.uuid4())
    r = http.post(f"/threads/{thread_id}/stream/events", json={"channels": ["values"]})
    assert r.status_code == 404  # no such thread (yet)
    _command(http, thread_id, "run.start", {"assistant_id": "echo", "input": {"messages": []}})
    for body, field in (({}, "channels"), ({"channels": ["bogus"]}, "channels"),
                        ({"channels": ["values"], "since": -1}, "since"),
                        ({"channels": ["values"], "namespaces": "x"}, "namespaces")):
        r = http.post(f"/threads/{thread_id}/stream/events", json=body)
        assert r.status_code == 422 and field in r.text, (body, r.text)


async def test_split_mode_events_reach_the_client_through_the_broker(cluster):
    cluster.add_worker()
    _, texts, output = await _chat(cluster.client)
    assert texts == ["Hello there, this answer streams token by token."]
    assert output["messages"][-1]["content"] == texts[0]
    with httpx.Client(base_url=cluster.api.url, timeout=30) as http:
        thread_id = str(uuid.uuid4())
        _command(http, thread_id, "run.start", {"assistant_id": "slow", "input": {}})
        first = _read(http, thread_id, {"channels": ["updates", "lifecycle"]}, lambda events: len(events) == 3)
        rest = _read(http, thread_id, {"channels": ["updates", "lifecycle"], "since": first[-1]["seq"]}, _root_end)
    assert [e["params"].get("node") for e in first + rest if e["method"] == "updates"] == [f"step{i}" for i in range(1, 6)]


async def test_a_run_executing_when_a_stream_opens_appears_in_it_from_then_on(client, http):
    """A run claimed while nobody followed its thread starts logging once a stream opens: the reader sees it
    running, its steps from then on, and its end (not nothing until the next run)."""
    thread_id = (await client.threads.create())["thread_id"]
    run = await client.runs.create(thread_id, "slow", input={}, stream_mode=["updates"], config={"configurable": {"delay": 0.4}})
    for _ in range(100):
        if (await client.runs.get(thread_id, run["run_id"]))["status"] == "running":
            break
        await asyncio.sleep(0.05)
    events = await asyncio.wait_for(asyncio.to_thread(_read, http, thread_id, {"channels": ALL}, _root_end), 30)
    assert events[0]["params"]["data"] == {"event": "running", "graph_name": "slow"}
    steps = [e["params"]["node"] for e in events if e["method"] == "updates"]
    assert steps and steps == [f"step{i}" for i in range(6 - len(steps), 6)]  # the last ones, in order
    assert events[-1]["params"]["data"] == {"event": "completed", "graph_name": "slow"}
    assert (await client.runs.join(thread_id, run["run_id"]))["steps"][-1] == "step5"
