"""Many runs at once: a thread's queue keeps creation order without overlap; stateless runs run in parallel."""
from __future__ import annotations

import asyncio
from itertools import groupby

from run_helpers import FINISHED, new_thread, run_status, say


async def test_twenty_enqueued_runs_finish_in_creation_order_without_overlap(client):
    thread_id = await new_thread(client)
    runs = [await client.runs.create(thread_id, "echo", input=say(str(i))) for i in range(20)]
    for run in runs:
        assert (await run_status(client, thread_id, run["run_id"], FINISHED, timeout=30))["status"] == "success"
    finished = [await client.runs.get(thread_id, run["run_id"]) for run in runs]
    ends = [run["updated_at"] for run in finished]
    assert ends == sorted(ends)
    # the checkpoints of each run form one block, the blocks in creation order: no two runs interleaved
    history = await client.threads.get_history(thread_id, limit=200)
    writers = [s["metadata"]["run_id"] for s in reversed(history)]
    assert [run_id for run_id, _ in groupby(writers)] == [r["run_id"] for r in runs]
    assert [r["run_id"] for r in await client.runs.list(thread_id, limit=20)] == [r["run_id"] for r in runs][::-1]
    messages = (await client.threads.get_state(thread_id))["values"]["messages"]
    expected = [text for i in range(20) for text in (str(i), f"echo: {i}")]
    assert [m["content"] for m in messages] == expected
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_fifty_stateless_runs_at_once_all_succeed(client):
    outputs = await asyncio.gather(*(client.runs.wait(None, "echo", input=say(f"n{i}")) for i in range(50)))
    assert [[m["content"] for m in out["messages"]] for out in outputs] == [[f"n{i}", f"echo: n{i}"] for i in range(50)]


async def test_runs_on_different_threads_run_in_parallel(client):
    threads = [await new_thread(client) for _ in range(5)]
    runs = [await client.runs.create(t, "slow", input={}, config={"configurable": {"delay": 0.2}}) for t in threads]
    began = asyncio.get_running_loop().time()
    await asyncio.gather(*(client.runs.join(t, r["run_id"]) for t, r in zip(threads, runs)))
    assert asyncio.get_running_loop().time() - began < 3  # one by one they would take 5s
