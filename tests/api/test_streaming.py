"""Streaming runs over SSE: event names, order and payloads per stream mode; join stream; errors."""
from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError

from run_helpers import FINISHED, HI, collect, new_thread, run_status, slow, started, wait_for

ANSWER = "Hello there, this answer streams token by token."


def names(events: list[tuple[str, object]]) -> list[str]:
    return [name for name, _ in events]


async def stream(client, assistant: str, thread_id: str | None = None, **kwargs) -> list[tuple[str, object]]:
    return await collect(client.runs.stream(thread_id, assistant, **kwargs))


# ---- framing ---------------------------------------------------------------------------------------

async def test_stream_starts_with_metadata_then_values_by_default(client):
    thread_id = await new_thread(client)
    events = await stream(client, "echo", thread_id, input=HI)
    assert names(events) == ["metadata", "values", "values"]
    metadata = events[0][1]
    assert metadata["attempt"] == 1
    run = await client.runs.get(thread_id, metadata["run_id"])
    assert run["status"] == "success"
    assert [m["content"] for m in events[-1][1]["messages"]] == ["hi", "echo: hi"]


async def test_stream_response_headers_point_at_the_run(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        thread_id = (await http.post("/threads", json={})).json()["thread_id"]
        async with http.stream("POST", f"/threads/{thread_id}/runs/stream", json={"assistant_id": "echo", "input": HI}) as r:
            body = (await r.aread()).decode()
    assert r.headers["content-type"].startswith("text/event-stream")
    run_path = r.headers["content-location"]
    assert run_path.startswith(f"/threads/{thread_id}/runs/")
    assert r.headers["location"] == f"{run_path}/stream"
    assert body.startswith("event: metadata\ndata: {") and "\n\nevent: values\n" in body


async def test_stateless_stream_runs_on_a_temporary_thread(client):
    events = await stream(client, "echo", input=HI, stream_mode=["updates", "values"])
    assert names(events) == ["metadata", "values", "updates", "values"]
    assert events[2][1]["echo"]["messages"][0]["content"] == "echo: hi"


async def test_single_stream_mode_string(client):
    events = await stream(client, "echo", await new_thread(client), input=HI, stream_mode="updates")
    assert names(events) == ["metadata", "updates"]
    assert events[1][1]["echo"]["messages"][0]["content"] == "echo: hi"


async def test_bad_stream_requests_fail_before_streaming(client):
    with pytest.raises(NotFoundError):
        await stream(client, "echo", str(uuid.uuid4()), input=HI)
    with pytest.raises(UnprocessableEntityError):
        await stream(client, "echo", input=HI, stream_mode="bogus")


# ---- stream modes ----------------------------------------------------------------------------------

async def test_chat_tokens_stream_as_several_messages_tuples(client):
    events = await stream(client, "chat", await new_thread(client), input=HI, stream_mode=["messages-tuple", "values"])
    chunks = [data for name, data in events if name == "messages"]
    assert len(chunks) > 1
    assert "".join(chunk["content"] for chunk, _ in chunks) == ANSWER
    assert all(chunk["type"] == "AIMessageChunk" for chunk, _ in chunks)
    assert chunks[0][1]["langgraph_node"] == "chat"
    # the tokens come before the final values, not after the run
    assert names(events).index("messages") < len(events) - 1 and names(events)[-1] == "values"


async def test_messages_mode_sends_metadata_then_accumulated_partials(client):
    events = await stream(client, "chat", await new_thread(client), input=HI, stream_mode="messages")
    assert names(events)[:2] == ["metadata", "messages/metadata"]
    partials = [data for name, data in events if name == "messages/partial"]
    assert len(partials) > 1
    assert partials[-1][0]["content"] == ANSWER and partials[-1][0]["type"] == "ai"
    assert ANSWER.startswith(partials[0][0]["content"])
    (msg_id,) = events[1][1]
    assert msg_id == partials[0][0]["id"]


async def test_messages_mode_on_a_plain_node_sends_one_complete_message(client):
    events = await stream(client, "echo", await new_thread(client), input=HI, stream_mode="messages")
    assert names(events) == ["metadata", "messages/metadata", "messages/complete"]
    assert events[2][1][0]["content"] == "echo: hi"


async def test_custom_mode_streams_what_the_node_writes(client):
    events = await stream(client, "custom", input={"count": 3}, stream_mode=["custom", "updates"])
    assert names(events) == ["metadata", "custom", "custom", "custom", "updates"]
    assert [data for name, data in events if name == "custom"] == [{"progress": i, "of": 3} for i in (1, 2, 3)]


async def test_events_mode_streams_langchain_callback_events(client):
    events = await stream(client, "echo", input=HI, stream_mode="events")
    kinds = [data["event"] for name, data in events if name == "events"]
    assert kinds[0] == "on_chain_start" and kinds[-1] == "on_chain_end"


@pytest.mark.parametrize("mode", ["debug", "tasks", "checkpoints"])
async def test_debug_tasks_and_checkpoints_modes(client, mode):
    events = await stream(client, "echo", await new_thread(client), input=HI, stream_mode=mode)
    assert names(events)[0] == "metadata"
    assert set(names(events)[1:]) == {mode} and len(events) > 2


async def test_subgraph_events_are_named_after_their_namespace(client):
    events = await stream(client, "subgraph", input={}, stream_mode="updates", stream_subgraphs=True)
    child = [(name, data) for name, data in events if name.startswith("updates|child:")]
    assert [list(data) for _, data in child] == [["inner_a"], ["inner_b"]]
    assert [list(data) for name, data in events if name == "updates"] == [["before"], ["child"], ["after"]]
    without = await stream(client, "subgraph", input={}, stream_mode="updates")
    assert names(without) == ["metadata", "updates", "updates", "updates"]


async def test_interrupt_shows_in_updates_and_values(client):
    thread_id = await new_thread(client)
    events = await stream(client, "interrupt", thread_id, input={"topic": "t"}, stream_mode=["values", "updates"])
    (interrupt,) = [data["__interrupt__"] for name, data in events if name == "updates" and "__interrupt__" in data]
    assert interrupt[0]["value"]["draft"] == "draft about t"
    assert "__interrupt__" in events[-1][1] and names(events)[-1] == "values"
    resumed = await stream(client, "interrupt", thread_id, command={"resume": True}, stream_mode="values")
    assert resumed[-1][1]["final"] == "draft about t"


async def test_failing_graph_streams_an_error_event(client):
    thread_id = await new_thread(client)
    events = await stream(client, "failing", thread_id, input={"fail": True}, stream_mode="updates")
    assert events[-1] == ("error", {"error": "ValueError", "message": "asked to fail"})
    (run,) = await client.runs.list(thread_id)
    assert run["status"] == "error"
    assert (await client.threads.get(thread_id))["status"] == "error"


# ---- join stream -----------------------------------------------------------------------------------

async def test_join_stream_follows_a_running_run_from_the_moment_of_joining(client):
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "slow", input={}, config=slow(0.1), stream_mode=["updates"])
    await started(client, thread_id, run["run_id"])

    async def a_step_is_done():  # the run's metadata goes out before its graph starts: it has gone by then
        return (await client.threads.get_state(thread_id))["values"].get("steps")

    await wait_for(a_step_is_done)
    events = await collect(client.runs.join_stream(thread_id, run["run_id"]))
    assert "metadata" not in names(events)
    assert set(names(events)) == {"updates"} and events[-1][1] == {"step5": {"steps": ["step5"]}}
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "success"


async def test_join_stream_of_a_finished_run_is_empty(client):
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "echo", input=HI)
    await run_status(client, thread_id, run["run_id"], FINISHED)
    assert await collect(client.runs.join_stream(thread_id, run["run_id"])) == []
    async with httpx.AsyncClient(base_url=client.http.client.base_url) as http:
        r = await http.get(f"/threads/{thread_id}/runs/{run['run_id']}/stream")
    assert (r.status_code, r.text) == (200, "")
    assert r.headers["location"] == f"/threads/{thread_id}/runs/{run['run_id']}/stream"


async def test_join_stream_of_unknown_run_fails(client):
    with pytest.raises(httpx.HTTPStatusError) as caught:
        await collect(client.runs.join_stream(await new_thread(client), str(uuid.uuid4())))
    assert caught.value.response.status_code == 404


async def test_background_run_streams_to_two_joiners(client):
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "slow", input={}, config=slow(0.1), stream_mode="updates")
    await started(client, thread_id, run["run_id"])
    first, second = await asyncio.gather(
        collect(client.runs.join_stream(thread_id, run["run_id"])),
        collect(client.runs.join_stream(thread_id, run["run_id"])),
    )
    assert first[-1] == second[-1] == ("updates", {"step5": {"steps": ["step5"]}})


async def test_messages_in_updates_carry_the_ids_the_state_keeps(client):
    thread = await client.threads.create()
    updates = [
        p.data async for p in client.runs.stream(
            thread["thread_id"], "echo", input={"messages": [{"role": "user", "content": "x"}]}, stream_mode="updates"
        ) if p.event == "updates"
    ]
    streamed_id = updates[0]["echo"]["messages"][0]["id"]
    state = await client.threads.get_state(thread["thread_id"])
    assert streamed_id is not None
    assert streamed_id == state["values"]["messages"][-1]["id"]


async def test_events_mode_names_the_root_after_the_graph(client):
    events = [
        p.data async for p in client.runs.stream(
            None, "echo", input={"messages": [{"role": "user", "content": "x"}]}, stream_mode="events"
        ) if p.event == "events"
    ]
    roots = [e for e in events if not e.get("parent_ids")]
    assert [e["event"] for e in roots] == ["on_chain_start", "on_chain_end"]
    assert {e["name"] for e in roots} == {"echo"}


async def test_joining_a_thread_stream_follows_each_of_its_runs_in_turn(client):
    import asyncio

    thread = await client.threads.create()
    seen: list[tuple[str, dict]] = []

    async def join():
        async for part in await client.threads.join_stream(thread["thread_id"], stream_mode="updates"):
            seen.append((part.event, part.data))
            if sum(1 for e, _ in seen if e == "updates") == 2:
                return

    joiner = asyncio.create_task(join())
    await asyncio.sleep(0.5)  # joined before the runs start
    for text in ("one", "two"):
        run = await client.runs.create(
            thread["thread_id"], "echo", input={"messages": [{"role": "user", "content": text}]}, stream_mode="updates"
        )
        await client.runs.join(thread["thread_id"], run["run_id"])
    await asyncio.wait_for(joiner, 15)
    updates = [d["echo"]["messages"][0]["content"] for e, d in seen if e == "updates"]
    assert updates == ["echo: one", "echo: two"]
    # each run's start, its updates, its run_done (the stream was left at the second run's update)
    assert [e for e, _ in seen] == ["metadata", "updates", "metadata", "metadata", "updates"]


async def test_joining_the_stream_of_an_unknown_thread_is_not_found(http):
    import uuid

    assert http.get(f"/threads/{uuid.uuid4()}/stream").status_code == 404


async def test_subgraph_streams_carry_only_the_modes_asked_for(client):
    events = [
        p.event async for p in client.runs.stream(
            None, "subgraph", input={}, stream_mode="updates", stream_subgraphs=True
        )
    ]
    assert events[0] == "metadata"
    assert {e.split("|")[0] for e in events[1:]} == {"updates"}
    assert any(e.startswith("updates|child:") for e in events)
