"""Runs on a thread and stateless: create, wait, get, list, delete, join; options; statuses; human in the loop."""
from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import BadRequestError, ConflictError, NotFoundError, UnprocessableEntityError

from conftest import ServerProcess, create_database, drop_database, running
from run_helpers import HI, FINISHED, new_thread, run_status, say, slow, started, wait_for

RUN_FIELDS = {
    "run_id", "thread_id", "assistant_id", "metadata", "status", "kwargs", "multitask_strategy",
    "created_at", "updated_at", "langsmith_session_name",
}


def texts(values: dict) -> list[str]:
    return [m["content"] for m in values["messages"]]


# ---- create / get / list / delete ------------------------------------------------------------------

async def test_background_run_is_pending_then_succeeds_with_the_official_shape(client, http):
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "echo", input=HI, metadata={"m": 1})
    assert set(run) == RUN_FIELDS
    assert run["status"] in ("pending", "running")
    assert run["multitask_strategy"] == "enqueue"
    assert run["metadata"]["m"] == 1 and run["metadata"]["graph_id"] == "echo"
    assert run["kwargs"]["stream_mode"] == ["values"] and run["kwargs"]["temporary"] is False
    assert uuid.UUID(run["assistant_id"])  # a graph id resolves to the assistant's uuid
    done = await run_status(client, thread_id, run["run_id"], FINISHED)
    assert done["status"] == "success"
    assert (await client.threads.get(thread_id))["status"] == "idle"
    assert texts((await client.threads.get_state(thread_id))["values"]) == ["hi", "echo: hi"]


async def test_create_answers_with_content_location(http):
    thread_id = http.post("/threads", json={}).json()["thread_id"]
    r = http.post(f"/threads/{thread_id}/runs", json={"assistant_id": "echo", "input": HI})
    assert r.status_code == 200
    assert r.headers["content-location"] == f"/threads/{thread_id}/runs/{r.json()['run_id']}"


async def test_assistant_can_be_given_by_id_or_graph_id(client):
    # the default assistant of the graph: what a graph id stands for
    assistant = (await client.assistants.search(graph_id="echo", metadata={"created_by": "system"}))[0]
    thread_id = await new_thread(client)
    by_id = await client.runs.wait(thread_id, assistant["assistant_id"], input=HI)
    by_graph = await client.runs.wait(thread_id, "echo", input=say("again"))
    assert texts(by_id) == ["hi", "echo: hi"]
    assert texts(by_graph)[-1] == "echo: again"
    runs = await client.runs.list(thread_id)
    assert {r["assistant_id"] for r in runs} == {assistant["assistant_id"]}


async def test_unknown_assistant_or_thread_is_rejected(client):
    thread_id = await new_thread(client)
    with pytest.raises(NotFoundError):
        await client.runs.create(thread_id, str(uuid.uuid4()), input=HI)
    with pytest.raises(UnprocessableEntityError):
        await client.runs.create(thread_id, "no-such-graph", input=HI)
    with pytest.raises(NotFoundError):
        await client.runs.create(str(uuid.uuid4()), "echo", input=HI)


async def test_get_run_of_another_thread_is_not_found(client):
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "echo", input=HI)
    with pytest.raises(NotFoundError):
        await client.runs.get(await new_thread(client), run["run_id"])
    with pytest.raises(NotFoundError):
        await client.runs.get(thread_id, str(uuid.uuid4()))


async def test_list_runs_newest_first_with_status_filter_limit_and_offset(client):
    thread_id = await new_thread(client)
    ids = [(await client.runs.create(thread_id, "echo", input=say(str(i))))["run_id"] for i in range(3)]
    await client.runs.join(thread_id, ids[-1])
    runs = await client.runs.list(thread_id)
    assert [r["run_id"] for r in runs] == ids[::-1]
    assert [r["run_id"] for r in await client.runs.list(thread_id, limit=1, offset=1)] == [ids[1]]
    assert len(await client.runs.list(thread_id, status="success")) == 3
    assert await client.runs.list(thread_id, status="pending") == []
    with pytest.raises(NotFoundError):
        await client.runs.list(str(uuid.uuid4()))


async def test_delete_finished_run_then_it_is_gone(client):
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "echo", input=HI)
    await client.runs.join(thread_id, run["run_id"])
    await client.runs.delete(thread_id, run["run_id"])
    with pytest.raises(NotFoundError):
        await client.runs.get(thread_id, run["run_id"])
    with pytest.raises(NotFoundError):
        await client.runs.delete(thread_id, run["run_id"])
    assert await client.runs.list(thread_id) == []


async def test_deleting_a_running_run_is_refused_and_thread_stays_consistent(client):
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "slow", input={}, config=slow(0.1))
    await started(client, thread_id, run["run_id"])
    with pytest.raises(ConflictError):
        await client.runs.delete(thread_id, run["run_id"])
    await client.runs.join(thread_id, run["run_id"])
    assert (await client.threads.get(thread_id))["status"] == "idle"


# ---- wait and join ---------------------------------------------------------------------------------

async def test_wait_returns_final_values_and_locations(client, http):
    thread_id = await new_thread(client)
    assert texts(await client.runs.wait(thread_id, "echo", input=HI)) == ["hi", "echo: hi"]
    r = http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": "echo", "input": say("x")})
    run_id = r.headers["content-location"].rsplit("/", 1)[1]
    assert r.headers["location"] == f"/threads/{thread_id}/runs/{run_id}/join"
    assert (await client.runs.get(thread_id, run_id))["status"] == "success"


async def test_join_waits_for_a_running_run_and_returns_its_values(client):
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "slow", input={}, config=slow(0.05))
    assert await client.runs.join(thread_id, run["run_id"]) == {"steps": [f"step{i}" for i in range(1, 6)]}
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "success"
    # joining a finished run answers at once with the same output
    assert (await client.runs.join(thread_id, run["run_id"]))["steps"][-1] == "step5"


async def test_join_of_unknown_run_is_not_found(client):
    with pytest.raises(httpx.HTTPStatusError) as caught:  # the SDK's join raises the plain httpx error
        await client.runs.join(await new_thread(client), str(uuid.uuid4()))
    assert caught.value.response.status_code == 404


# ---- stateless -------------------------------------------------------------------------------------

async def test_stateless_wait_returns_values_and_leaves_no_thread(client, http):
    r = http.post("/runs/wait", json={"assistant_id": "echo", "input": HI})
    assert [m["content"] for m in r.json()["messages"]] == ["hi", "echo: hi"]
    thread_id = r.headers["content-location"].split("/")[2]
    assert http.get(f"/threads/{thread_id}").status_code == 404


async def test_stateless_background_run_deletes_its_thread_on_completion(client, http):
    run = await client.runs.create(None, "echo", input=HI)
    assert run["kwargs"]["temporary"] is True

    async def gone():
        return http.get(f"/threads/{run['thread_id']}").status_code == 404

    await wait_for(gone)


async def test_stateless_run_on_completion_keep_keeps_thread_and_run(client):
    run = await client.runs.create(None, "echo", input=HI, on_completion="keep")
    assert run["kwargs"]["temporary"] is False
    done = await run_status(client, run["thread_id"], run["run_id"], FINISHED)
    assert done["status"] == "success"
    state = await client.threads.get_state(run["thread_id"])
    assert texts(state["values"]) == ["hi", "echo: hi"]


async def test_batch_creates_stateless_runs(client, http):
    runs = await client.runs.create_batch(
        [{"assistant_id": "echo", "input": say("a")}, {"assistant_id": "custom", "input": {"count": 1}}]
    )
    assert len(runs) == 2 and len({r["thread_id"] for r in runs}) == 2
    assert [r["metadata"]["graph_id"] for r in runs] == ["echo", "custom"]
    assert http.post("/runs/batch", json=[]).status_code == 422


# ---- options ---------------------------------------------------------------------------------------

async def test_factory_graph_reads_greeting_from_config_and_context(client):
    configured = await client.runs.wait(None, "factory", input={"messages": []}, config={"configurable": {"greeting": "howdy"}})
    assert texts(configured) == ["howdy"]
    from_context = await client.runs.wait(None, "factory", input={"messages": []}, context={"greeting": "ctx-howdy"})
    assert texts(from_context) == ["ctx-howdy"]
    with pytest.raises(BadRequestError):
        await client.runs.create(None, "factory", input={}, context={"a": 1}, config={"configurable": {"b": 2}})


async def test_metadata_and_config_are_recorded_on_the_run(client):
    thread_id = await new_thread(client)
    run = await client.runs.create(
        thread_id, "echo", input=HI, metadata={"who": "me"}, config={"configurable": {"x": 1}, "tags": ["t"]}
    )
    assert run["metadata"]["who"] == "me"
    assert run["kwargs"]["config"]["configurable"]["x"] == 1
    assert run["kwargs"]["config"]["tags"] == ["t"]
    await client.runs.join(thread_id, run["run_id"])
    history = await client.threads.get_history(thread_id, limit=1)
    assert history[0]["metadata"]["who"] == "me"


async def test_if_not_exists_create_makes_the_thread(client):
    thread_id = str(uuid.uuid4())
    values = await client.runs.wait(thread_id, "echo", input=HI, if_not_exists="create")
    assert texts(values) == ["hi", "echo: hi"]
    assert (await client.threads.get(thread_id))["status"] == "idle"
    with pytest.raises(httpx.HTTPStatusError) as caught:
        await client.runs.wait(str(uuid.uuid4()), "echo", input=HI, if_not_exists="reject")
    assert caught.value.response.status_code == 404


async def test_after_seconds_delays_the_start(client):
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "echo", input=HI, after_seconds=1)
    await asyncio.sleep(0.5)
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "pending"
    done = await run_status(client, thread_id, run["run_id"], FINISHED, timeout=5)
    assert done["status"] == "success"


@pytest.mark.parametrize("durability", ["async", "sync", "exit"])
async def test_every_durability_mode_completes_and_saves_the_state(client, durability):
    thread_id = await new_thread(client)
    values = await client.runs.wait(thread_id, "slow", input={}, config=slow(0), durability=durability)
    assert len(values["steps"]) == 5
    assert len((await client.threads.get_state(thread_id))["values"]["steps"]) == 5
    history = await client.threads.get_history(thread_id, limit=20)
    assert (len(history) == 1) if durability == "exit" else (len(history) == 7)


async def test_checkpoint_id_forks_from_a_past_checkpoint(client):
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "echo", input=say("one"))
    await client.runs.wait(thread_id, "echo", input=say("two"))
    history = await client.threads.get_history(thread_id)
    after_first = next(s for s in history if texts(s["values"]) == ["one", "echo: one"] and not s["next"])
    forked = await client.runs.wait(
        thread_id, "echo", input=say("three"), checkpoint_id=after_first["checkpoint"]["checkpoint_id"]
    )
    assert texts(forked) == ["one", "echo: one", "three", "echo: three"]
    via_checkpoint = await client.runs.wait(thread_id, "echo", input=say("four"), checkpoint=after_first["checkpoint"])
    assert texts(via_checkpoint) == ["one", "echo: one", "four", "echo: four"]


async def test_interrupt_before_stops_the_graph_before_the_node(client):
    thread_id = await new_thread(client)
    values = await client.runs.wait(thread_id, "echo", input=HI, interrupt_before=["echo"])
    assert texts(values) == ["hi"]
    assert (await client.threads.get_state(thread_id))["next"] == ["echo"]
    assert (await client.threads.get(thread_id))["status"] == "interrupted"
    resumed = await client.runs.wait(thread_id, "echo", input=None)
    assert texts(resumed) == ["hi", "echo: hi"]


async def test_interrupt_after_stops_after_the_node(client):
    thread_id = await new_thread(client)
    values = await client.runs.wait(thread_id, "slow", input={}, config=slow(0), interrupt_after=["step2"])
    assert values["steps"] == ["step1", "step2"]
    assert (await client.threads.get_state(thread_id))["next"] == ["step3"]


# ---- statuses and errors ---------------------------------------------------------------------------

async def test_failing_graph_ends_in_error_everywhere(client):
    thread_id = await new_thread(client)
    output = await client.runs.wait(thread_id, "failing", input={"fail": True}, raise_error=False)
    assert output == {"__error__": {"error": "ValueError", "message": "asked to fail"}}
    (run,) = await client.runs.list(thread_id)
    assert run["status"] == "error"
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "error"
    assert thread["error"] == {"error": "ValueError", "message": "asked to fail"}
    # the thread is usable again
    assert await client.runs.wait(thread_id, "failing", input={"fail": False}) == {"fail": False, "ok": True}
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_stateless_failing_run_returns_the_error(client):
    output = await client.runs.wait(None, "failing", input={"fail": True}, raise_error=False)
    assert output["__error__"]["error"] == "ValueError"
    with pytest.raises(Exception, match="asked to fail"):  # the SDK raises the run's error by default
        await client.runs.wait(None, "failing", input={"fail": True})


async def test_thread_is_busy_while_its_run_is_running(client):
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "slow", input={}, config=slow(0.1))
    await started(client, thread_id, run["run_id"])
    assert (await client.threads.get(thread_id))["status"] == "busy"
    await client.runs.join(thread_id, run["run_id"])
    assert (await client.threads.get(thread_id))["status"] == "idle"


# ---- human in the loop -----------------------------------------------------------------------------

async def test_interrupt_then_resume_with_command(client):
    thread_id = await new_thread(client)
    output = await client.runs.wait(thread_id, "interrupt", input={"topic": "cats"})
    assert output["draft"] == "draft about cats"
    (pending,) = output["__interrupt__"]
    assert pending["value"] == {"question": "approve the draft?", "draft": "draft about cats"}
    assert (await client.threads.get(thread_id))["status"] == "interrupted"
    (run,) = await client.runs.list(thread_id)
    assert run["status"] == "success"
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["review"]
    assert state["interrupts"][0]["value"]["draft"] == "draft about cats"

    final = await client.runs.wait(thread_id, "interrupt", command={"resume": True})
    assert final == {"topic": "cats", "draft": "draft about cats", "approved": True, "final": "draft about cats"}
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_state_update_as_node_then_continue(client):
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "interrupt", input={"topic": "dogs"})
    await client.threads.update_state(thread_id, {"approved": False, "draft": "edited"}, as_node="review")
    final = await client.runs.wait(thread_id, "interrupt", input=None)
    assert final["final"] == "rejected" and final["draft"] == "edited"


async def test_command_update_and_goto(client):
    final = await client.runs.wait(
        await new_thread(client), "interrupt", command={"update": {"draft": "d", "approved": True}, "goto": "finish"}
    )
    assert final["final"] == "d"  # `finish` ran with the updated state


async def test_resume_needs_a_thread(client):
    with pytest.raises(BadRequestError, match="thread_id"):
        await client.runs.create(None, "interrupt", command={"resume": True})


async def test_checkpoint_during_false_means_durability_exit(client):
    with pytest.warns(DeprecationWarning):  # the SDK's warning: durability replaces it
        run = await client.runs.create(None, "echo", input=HI, checkpoint_during=False)
    assert (run["kwargs"]["checkpoint_during"], run["kwargs"]["durability"]) == (False, "exit")
    run = await client.runs.create(None, "echo", input=HI, durability="exit")
    assert (run["kwargs"]["checkpoint_during"], run["kwargs"]["durability"]) == (True, "exit")


@pytest.fixture(scope="module")
def quick_timeout_server(postgres_server):
    """A server of its own (own database, own queue) whose runs may take one second."""
    uri = create_database(postgres_server)
    try:
        yield from running(ServerProcess(env={"DATABASE_URI": uri, "BG_JOB_TIMEOUT_SECS": "1"}))
    finally:
        drop_database(postgres_server, uri)


async def test_run_longer_than_bg_job_timeout_ends_in_timeout(quick_timeout_server):
    client = get_client(url=quick_timeout_server.url)
    thread_id = await new_thread(client)
    output = await client.runs.wait(thread_id, "slow", input={}, config=slow(0.5), raise_error=False)
    assert output["__error__"]["error"] == "TimeoutError"
    (run,) = await client.runs.list(thread_id)
    assert run["status"] == "timeout"
    assert (await client.threads.get(thread_id))["status"] == "error"
    assert len((await client.threads.get_state(thread_id))["values"]["steps"]) < 5


async def test_a_stateless_run_does_not_take_the_checkpointer_from_later_threaded_runs(client):
    """Stateless runs execute without a checkpointer; the same graph on a thread must still keep state."""
    await client.runs.wait(None, "subgraph", input={})
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "subgraph", input={})
    state = await client.threads.get_state(thread["thread_id"], subgraphs=True)
    assert state["values"]["log"][-1] == "after"
    assert len(await client.threads.get_history(thread["thread_id"], limit=10)) > 1


async def test_a_config_whose_configurable_is_not_an_object_is_rejected(http):
    r = http.post("/runs/wait", json={"assistant_id": "echo", "input": {}, "config": {"configurable": 5}})
    assert r.status_code == 422
    assert "configurable" in r.json()["detail"]
    r = http.post("/assistants", json={"graph_id": "echo", "config": {"configurable": [1]}})
    assert r.status_code == 422
