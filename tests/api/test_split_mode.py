"""Split mode: an API process with no queue, separate worker processes, joined by PostgreSQL and Redis."""
from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
from langgraph_sdk import get_client

from conftest import ServerProcess
from run_helpers import SLOW, STEPS



async def _wait_status(client, thread_id, run_id, statuses, timeout=30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = await client.runs.get(thread_id, run_id)
        if run["status"] in statuses or time.monotonic() > deadline:
            return run
        await asyncio.sleep(0.05)


async def test_events_of_a_run_in_a_worker_stream_through_the_api_process(cluster):
    cluster.add_worker()
    thread = await cluster.client.threads.create()
    events = [
        part.event
        async for part in cluster.client.runs.stream(
            thread["thread_id"], SLOW, input={}, stream_mode="updates", config={"configurable": {"delay": 0.01}}
        )
    ]
    assert events == ["metadata", *["updates"] * 5]
    assert (await cluster.client.threads.get_state(thread["thread_id"]))["values"]["steps"] == STEPS


async def test_cancel_on_the_api_process_stops_a_run_in_a_worker(cluster):
    cluster.add_worker()
    thread = await cluster.client.threads.create()
    run = await cluster.client.runs.create(thread["thread_id"], SLOW, input={}, config={"configurable": {"delay": 5}})
    assert (await _wait_status(cluster.client, thread["thread_id"], run["run_id"], {"running"}))["status"] == "running"
    # well within the step under way (5 s): the signal reached the worker in the other process
    await asyncio.wait_for(cluster.client.runs.cancel(thread["thread_id"], run["run_id"], wait=True), 4)
    assert (await cluster.client.runs.get(thread["thread_id"], run["run_id"]))["status"] == "interrupted"


async def test_runs_of_a_killed_worker_resume_from_their_last_checkpoint_on_another(cluster):
    victim, survivor = cluster.add_workers(2)
    threads = [await cluster.client.threads.create() for _ in range(20)]
    runs = [
        await cluster.client.runs.create(t["thread_id"], SLOW, input={}, config={"configurable": {"delay": 0.4}})
        for t in threads
    ]
    deadline = time.monotonic() + 20
    while victim.output().count("started (attempt 1)") < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.9)  # mid-run: a couple of steps checkpointed
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait()

    results = await asyncio.gather(
        *(cluster.client.runs.join(r["thread_id"], r["run_id"]) for r in runs)
    )
    assert all(result["steps"] == STEPS for result in results)
    statuses = [(await cluster.client.runs.get(r["thread_id"], r["run_id"]))["status"] for r in runs]
    assert statuses == ["success"] * 20

    # A run cut off after some checkpoints continues from them: its history holds both attempts.
    resumed = 0
    for r in runs:
        history = await cluster.client.threads.get_history(r["thread_id"], limit=20)
        resumed += {1, 2} <= {h["metadata"].get("run_attempt") for h in history}
    assert resumed >= 1
    assert "resumes from checkpoint" in survivor.output()


async def test_sigterm_lets_a_worker_finish_its_runs_before_it_exits(cluster):
    worker = cluster.add_worker()
    thread = await cluster.client.threads.create()
    run = await cluster.client.runs.create(thread["thread_id"], SLOW, input={}, config={"configurable": {"delay": 0.3}})
    await _wait_status(cluster.client, thread["thread_id"], run["run_id"], {"running"})
    worker.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.proc.wait, 30) == 0
    done = await cluster.client.runs.get(thread["thread_id"], run["run_id"])
    assert done["status"] == "success"
    assert (await cluster.client.threads.get_state(thread["thread_id"]))["values"]["steps"] == STEPS


async def test_a_worker_started_before_its_database_is_reachable_says_so_and_retries(redis_uri):
    worker = ServerProcess(
        env={"DATABASE_URI": "postgresql://postgres@127.0.0.1:1/none", "REDIS_URI": redis_uri}, command="worker"
    )
    try:
        worker.wait_for_log("retrying in", timeout=30)
        assert worker.proc.poll() is None
        assert "cannot connect to PostgreSQL" in worker.output()
    finally:
        worker.stop()


async def test_any_api_process_streams_a_run_another_one_created(cluster):
    cluster.add_worker()
    other = ServerProcess(env=cluster.env, command="serve", args=["--no-queue", "--host", "127.0.0.1"])
    cluster.workers.append(other)  # stopped with the cluster
    other.wait_ready()
    try:
        thread = await cluster.client.threads.create()
        run = await cluster.client.runs.create(
            thread["thread_id"], SLOW, input={}, stream_mode="updates", config={"configurable": {"delay": 0.3}}
        )
        joined = [p.event async for p in get_client(url=other.url).runs.join_stream(thread["thread_id"], run["run_id"])]
        assert joined and set(joined) == {"updates"}
        assert (await cluster.client.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"
    finally:
        other.stop()


async def test_sigterm_on_an_api_process_ends_its_streams_cleanly_and_the_run_goes_on(cluster):
    cluster.add_worker()
    thread = await cluster.client.threads.create()
    events = []

    async def follow():  # raw SSE: the SDK would reconnect by itself, hiding how the stream ended
        body = {"assistant_id": SLOW, "input": {}, "stream_mode": "updates", "on_disconnect": "continue",
                "config": {"configurable": {"delay": 0.5}}}
        async with httpx.AsyncClient(base_url=cluster.api.url, timeout=30) as http:
            async with http.stream("POST", f"/threads/{thread['thread_id']}/runs/stream", json=body) as r:
                async for line in r.aiter_lines():
                    if line.startswith("event: "):
                        events.append(line[7:])
                        if len(events) == 2:
                            cluster.api.proc.send_signal(signal.SIGTERM)

    await asyncio.wait_for(follow(), 20)  # the stream ends, without a transport error
    assert events[0] == "metadata" and len(events) < 6
    await asyncio.to_thread(cluster.api.proc.wait, 20)  # uvicorn re-raises SIGTERM once shut down
    assert "Application shutdown complete" in cluster.api.output()
    survivor = ServerProcess(env=cluster.env, command="serve", args=["--no-queue", "--host", "127.0.0.1"])
    cluster.workers.append(survivor)  # stopped with the cluster
    survivor.wait_ready()
    runs = await get_client(url=survivor.url).runs.list(thread["thread_id"])
    result = await get_client(url=survivor.url).runs.join(thread["thread_id"], runs[0]["run_id"])
    assert result["steps"] == STEPS


async def test_a_malformed_cancel_signal_does_not_stop_a_worker_from_cancelling(cluster, redis_uri):
    import redis.asyncio as aioredis

    cluster.add_worker()
    r = aioredis.from_url(redis_uri)
    await r.publish("agent_server:cancel", b"not-a-run-id interrupt")
    await r.aclose()
    thread = await cluster.client.threads.create()
    run = await cluster.client.runs.create(thread["thread_id"], SLOW, input={}, config={"configurable": {"delay": 2}})
    await _wait_status(cluster.client, thread["thread_id"], run["run_id"], {"running"})
    await cluster.client.runs.cancel(thread["thread_id"], run["run_id"], wait=True)
    assert (await cluster.client.runs.get(thread["thread_id"], run["run_id"]))["status"] == "interrupted"
    assert "malformed cancel message" in cluster.workers[0].output()


def test_an_api_process_without_the_queue_sizes_its_pool_for_its_requests_alone(cluster):
    """No run slots of its own: 10 PostgreSQL connections at most, where a worker with the same settings has 30."""
    metrics = httpx.get(f"{cluster.api.wait_ready().url}/metrics", params={"format": "json"}).json()
    assert (metrics["worker_capacity"], metrics["pool_max"]) == (0, 10)
