"""Runs as the official server answers them: listing with `select`, bulk cancel's body, the caller's
configurable keys reaching the graph, and the schemas of a graph configured by a context schema."""
from __future__ import annotations

import uuid

import pytest
from langgraph_sdk.errors import UnprocessableEntityError

from run_helpers import HI, new_thread, slow

STATUS_WITH_IDS = (
    "When providing a 'status', 'thread_id' and 'run_ids' must be omitted. The 'status' parameter "
    "cancels all runs with the given status, regardless of thread or run ID."
)


def default_assistant(graph_id: str) -> str:
    return str(uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), graph_id))


# ---- GET /threads/{id}/runs?select= ---------------------------------------------------------------

async def test_list_runs_returns_only_the_selected_fields(client, http):
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "echo", input=HI)
    await client.runs.join(thread_id, run["run_id"])
    listed = await client.runs.list(thread_id, select=["run_id", "status"])
    assert listed == [{"run_id": run["run_id"], "status": "success"}]
    r = http.get(f"/threads/{thread_id}/runs", params=[("select", "langsmith_session_name"), ("select", "kwargs")])
    assert r.status_code == 200 and set(r.json()[0]) == {"langsmith_session_name", "kwargs"}
    assert r.json()[0]["langsmith_session_name"] is None


def test_list_runs_rejects_unknown_select_fields_as_the_official_server(http):
    thread_id = http.post("/threads", json={}).json()["thread_id"]
    for path in (f"/threads/{thread_id}/runs", f"/threads/{uuid.uuid4()}/runs"):  # checked before the thread
        r = http.get(path, params=[("select", "run_id"), ("select", "bogus"), ("select", "run_id,status")])
        assert r.status_code == 422
        detail = r.json()["detail"]
        assert detail.startswith("Invalid select columns: ['bogus', 'run_id,status']. Expected: {")
        assert "'langsmith_session_name'" in detail and "'multitask_strategy'" in detail


# ---- POST /runs/cancel ----------------------------------------------------------------------------

@pytest.mark.parametrize("selection", ["thread_id", "run_ids", "both"])
async def test_bulk_cancel_by_status_refuses_a_thread_or_run_ids(client, http, selection):
    """`status` cancels server-wide: combined with a thread or runs it is a 422, and cancels nothing."""
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "slow", input={}, config=slow(0.05), after_seconds=60)
    body = {"status": "pending"}
    if selection in ("thread_id", "both"):
        body["thread_id"] = thread_id
    if selection in ("run_ids", "both"):
        body["run_ids"] = [run["run_id"]]
    try:
        r = http.post("/runs/cancel", json=body)
        assert (r.status_code, r.json()) == (422, {"detail": STATUS_WITH_IDS})
        assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "pending"
    finally:
        await client.runs.cancel(thread_id, run["run_id"])


async def test_bulk_cancel_by_status_with_a_thread_is_422_through_the_sdk(client):
    with pytest.raises(UnprocessableEntityError):
        await client.runs.cancel_many(thread_id=str(uuid.uuid4()), status="running")


def test_bulk_cancel_with_a_thread_and_no_run_ids_finds_nothing(http):
    r = http.post("/runs/cancel", json={"thread_id": str(uuid.uuid4()), "run_ids": []})
    assert (r.status_code, r.json()) == (404, {"detail": "No runs found to cancel."})


# ---- the caller's configurable reaches the graph --------------------------------------------------

async def test_callers_configurable_keys_reach_the_graph_unchanged(client):
    thread_id = await new_thread(client)
    config = {"configurable": {"user_id": "alice", "custom": "x", "run_id": "mine", "graph_id": "mine"}}
    seen = (await client.runs.wait(thread_id, "seen_config", input={}, config=config))["seen"]
    assert seen["user_id"] == "alice" and seen["custom"] == "x"
    # the run's own ids are the server's, as on the official server
    assert seen["graph_id"] == "seen_config" and seen["run_id"] != "mine"
    assert seen["thread_id"] == thread_id and seen["assistant_id"] == default_assistant("seen_config")


async def test_context_user_id_reaches_the_graph_and_user_id_defaults_to_empty(client):
    thread_id = await new_thread(client)
    seen = (await client.runs.wait(thread_id, "seen_config", input={}, context={"user_id": "bob", "k": 1}))["seen"]
    assert seen["user_id"] == "bob" and seen["k"] == 1
    seen = (await client.runs.wait(thread_id, "seen_config", input={}))["seen"]
    assert seen["user_id"] == ""  # no caller's user_id, no authenticated user: as the official server
    # no authenticated user: the keys are there, empty (a graph reading them works with auth off too)
    assert (seen["langgraph_auth_user_id"], seen["langgraph_auth_user"]) == ("", None)
    assert seen["langgraph_request_id"]  # the creating request's id (X-Request-ID)
    spoofed = {"configurable": {"langgraph_auth_user_id": "mallory", "langgraph_auth_user": {"identity": "mallory"}}}
    seen = (await client.runs.wait(thread_id, "seen_config", input={}, config=spoofed))["seen"]
    assert (seen["langgraph_auth_user_id"], seen["langgraph_auth_user"]) == ("", None)  # the server's, not the caller's
    run = (await client.runs.list(thread_id, select=["kwargs"]))[0]
    assert run["kwargs"]["config"]["configurable"]["user_id"] == ""
    assert sorted(run["kwargs"]) == [  # the official server's keys, no more
        "checkpoint_during", "command", "config", "context", "durability", "feedback_keys", "input",
        "interrupt_after", "interrupt_before", "resumable", "stream_mode", "subgraphs", "temporary", "webhook",
    ]
    assert run["kwargs"]["config"]["configurable"]["langgraph_auth_permissions"] == []


async def test_the_creating_requests_id_reaches_the_graph(client):
    thread_id = await new_thread(client)
    seen = (await client.runs.wait(thread_id, "seen_config", input={}, headers={"X-Request-ID": "req-42"}))["seen"]
    assert seen["langgraph_request_id"] == "req-42"


@pytest.mark.parametrize("graph_id", ["with_context", "with_context_dict"])
async def test_without_a_context_the_runs_configurable_is_its_context(client, graph_id):
    """As the official server: a graph reading runtime.context gets the caller's configurable when the run has
    no context, on top of its assistant's context; a context given wins over the assistant's."""
    out = await client.runs.wait(None, graph_id, input={}, config={"configurable": {"model": "large"}})
    assert out == {"answer": "large"}
    run = await client.runs.create(None, graph_id, input={}, config={"configurable": {"model": "large"}})
    assert run["kwargs"]["context"] == {"model": "large"}
    assistant = await client.assistants.create(graph_id, context={"model": "small"})
    run = await client.runs.create(None, assistant["assistant_id"], input={}, config={"configurable": {"k": 1}})
    assert run["kwargs"]["context"] == {"model": "small", "k": 1}
    assert await client.runs.wait(None, assistant["assistant_id"], input={}) == {"answer": "small"}
    assert await client.runs.wait(None, assistant["assistant_id"], input={}, context={"model": "large"}) == {"answer": "large"}


async def test_a_runs_metadata_is_its_assistants_then_its_threads_then_its_own(client):
    """As the official server: the thread's metadata goes into its runs' (over the assistant's, under the
    run's own), so into their config and checkpoints too: a thread's keys filter its history."""
    assistant = await client.assistants.create("echo", metadata={"owner": "assistant", "am": 1, "graph_id": "no"})
    thread = await client.threads.create(metadata={"owner": "thread", "tm": 2, "assistant_id": "no"})
    tid, aid = thread["thread_id"], assistant["assistant_id"]
    ids = {"graph_id": "echo", "assistant_id": aid}
    run = await client.runs.create(tid, aid, input=HI, metadata={"rm": 3})
    assert run["metadata"] == {"am": 1, "owner": "thread", "tm": 2, "rm": 3, **ids}
    await client.runs.join(tid, run["run_id"])
    stored = await client.runs.get(tid, run["run_id"])
    assert stored["metadata"] == run["metadata"] == stored["kwargs"]["config"]["metadata"]
    state = await client.threads.get_state(tid)
    assert (state["metadata"]["tm"], state["metadata"]["owner"]) == (2, "thread")
    assert len(await client.threads.get_history(tid, metadata={"tm": 2})) >= 1
    # the run's own keys win; so on a busy thread (the run queued behind another, in a transaction of its own)
    first = await client.runs.create(tid, "slow", input={}, config={"configurable": {"delay": 0.2}})
    queued = await client.runs.create(tid, aid, input=HI, metadata={"owner": "run"}, multitask_strategy="enqueue")
    assert queued["metadata"] == {"am": 1, "owner": "run", "tm": 2, **ids}
    await client.runs.join(tid, queued["run_id"])
    assert (await client.runs.get(tid, first["run_id"]))["metadata"]["tm"] == 2
    # a stateless run has no thread of the caller's: its assistant's and its own
    run = await client.runs.create(None, aid, input=HI, metadata={"rm": 3})
    assert run["metadata"] == {"am": 1, "owner": "assistant", "rm": 3, **ids}


@pytest.mark.parametrize("graph_id", ["with_context", "with_context_pydantic"])
async def test_a_class_context_takes_the_keys_it_has_fields_for_and_its_defaults(client, graph_id):
    """As the official server: keys a dataclass or a pydantic model (this one refusing others) has no field for
    are left out (a caller's configurable holds many), and a run with no context gets its defaults."""
    wait = lambda **kw: client.runs.wait(None, graph_id, input={}, **kw)  # noqa: E731
    assert await wait(config={"configurable": {"model": "large", "foo": 1}}) == {"answer": "large"}
    assert await wait(context={"foo": 1}) == {"answer": "small"}
    assert await wait() == {"answer": "small"}


# ---- schemas of a graph with a context schema -----------------------------------------------------

CONTEXT = {
    "properties": {
        "model": {"default": "small", "enum": ["small", "large"], "title": "Model", "type": "string"},
        "temperature": {"default": 0.0, "title": "Temperature", "type": "number"},
    },
    "title": "Context",
    "type": "object",
}
CONTEXT_DICT = {
    "properties": {
        "model": {"enum": ["small", "large"], "title": "Model", "type": "string"},
        "user_name": {"title": "User Name", "type": "string"},
    },
    "title": "ContextDict",
    "type": "object",
}


@pytest.mark.parametrize("graph_id, expected", [("with_context", CONTEXT), ("with_context_dict", CONTEXT_DICT)])
async def test_schemas_of_a_graph_with_a_context_schema(client, graph_id, expected):
    """As the official server: the config schema describes the context's fields, not a `configurable`
    wrapper with a $ref."""
    s = await client.assistants.get_schemas(default_assistant(graph_id))
    assert s["context_schema"] == expected
    assert s["config_schema"] == expected
    assert s["graph_id"] == graph_id and "answer" in s["state_schema"]["properties"]
