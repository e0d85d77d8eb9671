"""Cancelling runs: one run (wait, interrupt|rollback), bulk, and by disconnecting a stream."""
from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError

from run_helpers import FINISHED, STEPS, collect, new_thread, run_status, slow, started, wait_for


async def slow_run(client, delay: float = 0.2, **kwargs) -> tuple[str, str]:
    """A slow run that has started; returns (thread_id, run_id)."""
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "slow", input={}, config=slow(delay), **kwargs)
    await started(client, thread_id, run["run_id"])
    return thread_id, run["run_id"]


async def _steps(client, thread_id: str) -> list[str]:
    return (await client.threads.get_state(thread_id))["values"].get("steps", [])


async def test_cancel_stops_a_running_run_in_the_middle_of_its_step(client):
    thread_id, run_id = await slow_run(client, delay=3)
    await wait_for(lambda: _steps(client, thread_id), timeout=15)  # step1 done, step2 under way for 3 s
    await client.runs.cancel(thread_id, run_id)
    run = await run_status(client, thread_id, run_id, FINISHED, timeout=15)
    assert run["status"] == "interrupted"
    assert await _steps(client, thread_id) == ["step1"]  # stopped within step2; what came before is kept
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    assert thread["error"]["error"] == "UserInterrupt"
    await asyncio.sleep(0.3)
    assert await _steps(client, thread_id) == ["step1"]  # and nothing more ran after it ended


async def test_cancel_with_wait_returns_after_the_run_stopped(client, http):
    thread_id, run_id = await slow_run(client)
    r = http.post(f"/threads/{thread_id}/runs/{run_id}/cancel", params={"wait": "true"})
    assert (r.status_code, r.json()) == (200, {})
    assert (await client.runs.get(thread_id, run_id))["status"] == "interrupted"
    assert (await client.threads.get(thread_id))["status"] == "interrupted"


async def test_cancel_without_wait_answers_202(client, http):
    thread_id, run_id = await slow_run(client)
    r = http.post(f"/threads/{thread_id}/runs/{run_id}/cancel")
    assert (r.status_code, r.content) == (202, b"")
    await run_status(client, thread_id, run_id, {"interrupted"})


async def test_cancel_rollback_deletes_the_run_and_its_checkpoints(client):
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "slow", input={}, config=slow(0))
    before = await client.threads.get_history(thread_id, limit=50)
    run = await client.runs.create(thread_id, "slow", input={}, config=slow(0.2))
    await started(client, thread_id, run["run_id"])
    await asyncio.sleep(0.3)
    await client.runs.cancel(thread_id, run["run_id"], wait=True, action="rollback")
    with pytest.raises(NotFoundError):
        await client.runs.get(thread_id, run["run_id"])
    assert len(await client.runs.list(thread_id)) == 1
    after = await client.threads.get_history(thread_id, limit=50)
    assert [s["checkpoint_id"] for s in after] == [s["checkpoint_id"] for s in before]
    assert (await client.threads.get_state(thread_id))["values"]["steps"] == STEPS
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "idle" and thread["error"]["error"] == "UserRollback"


async def test_cancel_a_pending_run_before_it_starts(client):
    thread_id, running = await slow_run(client, delay=0.1)
    pending = await client.runs.create(thread_id, "slow", input={}, config=slow(0.1))
    await client.runs.cancel(thread_id, pending["run_id"])
    assert (await client.runs.get(thread_id, pending["run_id"]))["status"] == "interrupted"
    await client.runs.join(thread_id, running)
    assert (await client.runs.get(thread_id, running))["status"] == "success"
    assert (await client.runs.get(thread_id, pending["run_id"]))["status"] == "interrupted"


async def test_cancel_of_finished_or_unknown_run_is_not_found(client, http):
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "echo", input={"messages": []})
    (run,) = await client.runs.list(thread_id)
    r = http.post(f"/threads/{thread_id}/runs/{run['run_id']}/cancel")
    assert r.status_code == 404 and r.json()["detail"].startswith("No matching runs to cancel.")
    r = http.post(f"/threads/{thread_id}/runs/{uuid.uuid4()}/cancel")
    assert (r.status_code, r.json()) == (404, {"detail": "No runs found to cancel."})


async def test_bulk_cancel_by_thread_and_run_ids(client):
    thread_id, running = await slow_run(client)
    pending = (await client.runs.create(thread_id, "slow", input={}, config=slow(0.2)))["run_id"]
    await client.runs.cancel_many(thread_id=thread_id, run_ids=[running, pending])
    for run_id in (running, pending):
        assert (await run_status(client, thread_id, run_id, FINISHED))["status"] == "interrupted"
    await wait_for(lambda: _thread_status_is(client, thread_id, "interrupted"))


async def _thread_status_is(client, thread_id: str, status: str) -> bool:
    return (await client.threads.get(thread_id))["status"] == status


async def test_bulk_cancel_by_status(own_server):
    """Cancels every pending, then every running run of the server: on a server and database of its own,
    never the shared one, whose other tests' runs it would cancel."""
    client = get_client(url=own_server.url)
    thread_a, run_a = await slow_run(client)
    thread_b = await new_thread(client)
    run_b = (await client.runs.create(thread_b, "slow", input={}, config=slow(0.2), after_seconds=30))["run_id"]
    await client.runs.cancel_many(status="pending")
    assert (await client.runs.get(thread_b, run_b))["status"] == "interrupted"
    assert (await client.runs.get(thread_a, run_a))["status"] == "running"
    await client.runs.cancel_many(status="running")
    await run_status(client, thread_a, run_a, {"interrupted"})
    with httpx.Client(base_url=own_server.url, timeout=30) as http:
        assert http.post("/runs/cancel", json={"status": "all"}).status_code in (204, 404)


async def test_bulk_cancel_validates_its_body(client, http):
    assert http.post("/runs/cancel", json={}).status_code == 422
    assert http.post("/runs/cancel", json={"thread_id": str(uuid.uuid4())}).status_code == 422
    assert http.post("/runs/cancel", json={"status": "bogus"}).status_code == 422
    r = http.post("/runs/cancel", json={"thread_id": str(uuid.uuid4()), "run_ids": [str(uuid.uuid4())]})
    assert (r.status_code, r.json()) == (404, {"detail": "No runs found to cancel."})
    with pytest.raises(UnprocessableEntityError):
        await client.runs.cancel_many()


# ---- disconnecting ---------------------------------------------------------------------------------

async def _first_update_then_close(parts) -> str:
    """Read a stream until its first update, then close it; returns the run id."""
    run_id = None
    async for part in parts:
        if part.event == "metadata":
            run_id = part.data["run_id"]
        if part.event == "updates":
            break
    await parts.aclose()
    return run_id


async def test_closing_the_stream_cancels_the_run_by_default(client):
    thread_id = await new_thread(client)
    parts = client.runs.stream(thread_id, "slow", input={}, config=slow(0.2), stream_mode="updates")
    run_id = await _first_update_then_close(parts)
    assert (await run_status(client, thread_id, run_id, FINISHED, timeout=2))["status"] == "interrupted"
    assert len((await client.threads.get_state(thread_id))["values"]["steps"]) < 5


async def test_on_disconnect_continue_lets_the_run_finish(client):
    thread_id = await new_thread(client)
    parts = client.runs.stream(
        thread_id, "slow", input={}, config=slow(0.05), stream_mode="updates", on_disconnect="continue"
    )
    run_id = await _first_update_then_close(parts)
    assert (await run_status(client, thread_id, run_id, FINISHED))["status"] == "success"
    assert (await client.threads.get_state(thread_id))["values"]["steps"] == STEPS


async def test_closing_an_httpx_stream_cancels_the_run(server, client):
    thread_id = await new_thread(client)
    body = {"assistant_id": "slow", "input": {}, "config": slow(0.2), "on_disconnect": "cancel"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        async with http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as r:
            run_id = r.headers["content-location"].rsplit("/", 1)[1]
            async for line in r.aiter_lines():
                if line.startswith("event: metadata"):
                    break
    assert (await run_status(client, thread_id, run_id, FINISHED, timeout=2))["status"] == "interrupted"


async def test_join_stream_cancel_on_disconnect(client):
    thread_id, run_id = await slow_run(client, stream_mode="updates")
    parts = client.runs.join_stream(thread_id, run_id, cancel_on_disconnect=True)
    await _first_update_then_close(parts)
    assert (await run_status(client, thread_id, run_id, FINISHED, timeout=2))["status"] == "interrupted"


async def test_join_stream_disconnect_leaves_the_run_running_by_default(client):
    thread_id, run_id = await slow_run(client, delay=0.05, stream_mode="updates")
    await _first_update_then_close(client.runs.join_stream(thread_id, run_id))
    assert (await run_status(client, thread_id, run_id, FINISHED))["status"] == "success"


async def test_join_of_a_pending_run_returns_as_soon_as_it_is_cancelled(client):
    thread_id, first = await slow_run(client, delay=2)
    pending = (await client.runs.create(thread_id, "slow", input={}, config=slow(0.2)))["run_id"]
    joined = asyncio.create_task(client.runs.join(thread_id, pending))
    await asyncio.sleep(0.2)
    await client.runs.cancel(thread_id, pending)
    # told at once, not by the waiters' periodic check (runs.CHECK_SECONDS, 5 s)
    await asyncio.wait_for(joined, 4)
    assert (await client.runs.get(thread_id, first))["status"] == "running"  # the run ahead goes on


async def test_stream_of_a_pending_run_ends_when_a_new_run_interrupts_it(client):
    thread_id, _ = await slow_run(client)
    events = asyncio.create_task(collect(client.runs.stream(thread_id, "slow", input={}, config=slow(0.2))))
    await asyncio.sleep(0.2)
    last = await client.runs.create(thread_id, "echo", input={"messages": []}, multitask_strategy="interrupt")
    # it never started (not even metadata), and its stream was told at once, not by the 5 s check
    assert await asyncio.wait_for(events, 4) == []
    await client.runs.join(thread_id, last["run_id"])


async def test_deleting_a_thread_while_its_run_writes_checkpoints_leaves_none_behind(client, database_uri):
    import asyncio

    import psycopg

    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "slow", input={}, config={"configurable": {"delay": 0.3}})
    for _ in range(100):
        if (await client.runs.get(thread["thread_id"], run["run_id"]))["status"] == "running":
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.4)  # a checkpoint or two written
    await client.threads.delete(thread["thread_id"])
    left = None
    for _ in range(60):  # the worker notices the cancel, stops, and cleans up
        with psycopg.connect(database_uri) as conn:
            left = conn.execute(
                "SELECT (SELECT count(*) FROM checkpoints WHERE thread_id = %(t)s)"
                " + (SELECT count(*) FROM checkpoint_writes WHERE thread_id = %(t)s)"
                " + (SELECT count(*) FROM checkpoint_blobs WHERE thread_id = %(t)s)",
                {"t": thread["thread_id"]},
            ).fetchone()[0]
        if left == 0:
            break
        await asyncio.sleep(0.1)
    assert left == 0


async def test_the_thread_of_a_stateless_run_cancelled_before_it_started_is_removed(client, http):
    import asyncio

    run = await client.runs.create(None, "echo", input={"messages": []}, after_seconds=60)
    await client.runs.cancel(run["thread_id"], run["run_id"])
    status = None
    for _ in range(150):  # the queue's housekeeping runs every few seconds
        status = http.get(f"/threads/{run['thread_id']}").status_code
        if status == 404:
            break
        await asyncio.sleep(0.1)
    assert status == 404
