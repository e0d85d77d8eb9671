"""A new run on a busy thread: multitask_strategy reject, interrupt, rollback, enqueue."""
from __future__ import annotations

import asyncio

import httpx
import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError

from run_helpers import FINISHED, STEPS, new_thread, run_status, slow, started


async def busy_thread(client, delay: float = 0.2) -> tuple[str, str]:
    """A thread whose slow run has done at least one step."""
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "slow", input={}, config=slow(delay))
    await started(client, thread_id, run["run_id"])
    await asyncio.sleep(delay * 1.5)
    return thread_id, run["run_id"]


async def test_reject_refuses_a_second_run_with_409(client, http):
    thread_id, first = await busy_thread(client)
    with pytest.raises(ConflictError):
        await client.runs.create(thread_id, "slow", input={}, multitask_strategy="reject")
    r = http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": "slow", "multitask_strategy": "reject"})
    assert r.status_code == 409
    assert r.json() == {
        "detail": "Thread is already running a task. Wait for it to finish or choose a different multitask strategy."
    }
    with pytest.raises(httpx.HTTPStatusError):  # the SDK's stream raises the plain httpx error
        async for _ in client.runs.stream(thread_id, "slow", input={}, multitask_strategy="reject"):
            pass
    assert [r["run_id"] for r in await client.runs.list(thread_id)] == [first]
    await client.runs.join(thread_id, first)
    assert (await client.runs.get(thread_id, first))["status"] == "success"


async def test_reject_on_an_idle_thread_runs(client):
    thread_id = await new_thread(client)
    values = await client.runs.wait(thread_id, "slow", input={}, config=slow(0), multitask_strategy="reject")
    assert values["steps"] == STEPS


async def test_runs_created_at_once_on_an_idle_thread_with_reject_only_one_is_queued(client):
    """An idle thread takes a run in one statement (its row lock standing for the thread's lock): of runs
    created at the same moment, the first takes the thread and the others find it busy."""
    thread_id = await new_thread(client)

    async def create():
        try:
            return await client.runs.create(thread_id, "slow", input={}, config=slow(0.5), multitask_strategy="reject")
        except ConflictError:
            return None

    created = [r for r in await asyncio.gather(*(create() for _ in range(8))) if r is not None]
    assert len(created) == 1
    assert [r["run_id"] for r in await client.runs.list(thread_id)] == [created[0]["run_id"]]
    await client.runs.join(thread_id, created[0]["run_id"])
    assert (await client.runs.get(thread_id, created[0]["run_id"]))["status"] == "success"


async def test_interrupt_stops_the_active_run_keeping_its_progress(client):
    thread_id, first = await busy_thread(client)
    second = await client.runs.create(
        thread_id, "slow", input={}, config=slow(0), multitask_strategy="interrupt"
    )
    assert second["multitask_strategy"] == "interrupt"
    await client.runs.join(thread_id, second["run_id"])
    assert (await client.runs.get(thread_id, first))["status"] == "interrupted"
    assert (await client.runs.get(thread_id, second["run_id"]))["status"] == "success"
    steps = (await client.threads.get_state(thread_id))["values"]["steps"]
    # the first run's steps stay in the state; the second ran its own five after them
    assert steps[-5:] == STEPS and 0 < len(steps) - 5 < 5
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_interrupt_also_ends_pending_runs(client):
    thread_id, first = await busy_thread(client)
    queued = await client.runs.create(thread_id, "slow", input={}, config=slow(0))
    last = await client.runs.create(thread_id, "slow", input={}, config=slow(0), multitask_strategy="interrupt")
    await client.runs.join(thread_id, last["run_id"])
    statuses = {r["run_id"]: r["status"] for r in await client.runs.list(thread_id)}
    assert statuses == {first: "interrupted", queued["run_id"]: "interrupted", last["run_id"]: "success"}


async def test_rollback_deletes_the_active_run_and_its_checkpoints(client):
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "slow", input={}, config=slow(0))
    checkpoints_before = len(await client.threads.get_history(thread_id, limit=100))
    first = await client.runs.create(thread_id, "slow", input={}, config=slow(0.2))
    await started(client, thread_id, first["run_id"])
    await asyncio.sleep(0.3)
    second = await client.runs.create(thread_id, "slow", input={}, config=slow(0), multitask_strategy="rollback")
    await client.runs.join(thread_id, second["run_id"])
    with pytest.raises(NotFoundError):
        await client.runs.get(thread_id, first["run_id"])
    assert (await client.threads.get_state(thread_id))["values"]["steps"] == STEPS * 2  # nothing of the first
    history = await client.threads.get_history(thread_id, limit=100)
    assert len(history) == checkpoints_before * 2 and all(
        s["metadata"].get("run_id") != first["run_id"] for s in history
    )


async def test_enqueue_runs_one_after_the_other(client):
    thread_id, first = await busy_thread(client, delay=0.05)
    second = await client.runs.create(thread_id, "slow", input={}, config=slow(0), multitask_strategy="enqueue")
    assert second["status"] == "pending"
    done = await run_status(client, thread_id, second["run_id"], FINISHED)
    first_run = await client.runs.get(thread_id, first)
    assert (first_run["status"], done["status"]) == ("success", "success")
    assert first_run["updated_at"] <= done["updated_at"]
    assert (await client.threads.get_state(thread_id))["values"]["steps"] == STEPS * 2
