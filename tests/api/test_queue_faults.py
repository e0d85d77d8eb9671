"""The queue under faults: workers drained, killed or frozen mid-run; graphs failing in ways that look
like ours; a thread's runs spread over several workers. Real processes, PostgreSQL and Redis."""
from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import psycopg
import pytest

from conftest import ServerProcess, create_database, drop_database, first_to_log
from run_helpers import FINISHED, SLOW, STEPS, new_thread, run_status, slow


async def _running_on(worker: ServerProcess, run: dict, attempt: int, timeout: float = 30) -> None:
    line = f"run {run['run_id']} on thread {run['thread_id']} started (attempt {attempt})"
    await asyncio.to_thread(worker.wait_for_log, line, timeout)


async def test_many_runs_on_one_thread_across_two_workers_never_overlap(cluster):
    for _ in range(2):
        cluster.add_worker(DRAIN_TIMEOUT_SECS="0")
    client = cluster.client
    thread_id = await new_thread(client)
    runs = [await client.runs.create(thread_id, SLOW, input={}, config=slow(0.05)) for _ in range(12)]
    running_at_once, handed_over = 0, False
    while True:
        listed = await client.runs.list(thread_id, limit=100)
        running_at_once = max(running_at_once, sum(r["status"] == "running" for r in listed))
        if all(r["status"] in FINISHED for r in listed):
            break
        if not handed_over and sum(r["status"] == "success" for r in listed) >= 4:
            # the worker that has the thread's runs so far leaves (a deploy): the other takes over
            busy = next(w for w in cluster.workers if "started (attempt 1)" in w.output())
            busy.proc.send_signal(signal.SIGTERM)
            handed_over = True
        await asyncio.sleep(0.02)
    assert running_at_once == 1
    assert {r["status"] for r in listed} == {"success"}
    # Each run's checkpoints follow the previous run's: no two runs ever interleaved their steps.
    history = await client.threads.get_history(thread_id, limit=1000)
    order = [h["metadata"]["run_id"] for h in reversed(history)]
    blocks = [run_id for i, run_id in enumerate(order) if i == 0 or order[i - 1] != run_id]
    assert blocks == [r["run_id"] for r in runs]
    assert all(" started (attempt " in w.output() for w in cluster.workers)  # both took part


def _started(run: dict, attempt: int) -> str:
    return f"run {run['run_id']} on thread {run['thread_id']} started (attempt {attempt})"


async def test_two_drains_and_a_crash_do_not_end_a_healthy_run(cluster):
    # Every worker is up before the run starts: each hand-over below takes a moment, not a worker's start,
    # so the run is still in its first steps when the next one stops (on a loaded machine too).
    workers = cluster.add_workers(4, DRAIN_TIMEOUT_SECS="0.2")
    client = cluster.client
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, SLOW, input={}, config=slow(1.5))
    holder = await first_to_log(workers, _started(run, 1))
    for attempt, stop in ((2, signal.SIGTERM), (3, signal.SIGTERM), (4, signal.SIGKILL)):
        holder.proc.send_signal(stop)  # a rolling deploy (SIGTERM), then a crash (SIGKILL)
        await asyncio.to_thread(holder.proc.wait, 30)
        workers.remove(holder)
        holder = await first_to_log(workers, _started(run, attempt))
    done = await run_status(client, thread_id, run["run_id"], FINISHED, timeout=60)
    assert done["status"] == "success"
    assert (await client.threads.get_state(thread_id))["values"]["steps"] == STEPS


async def test_a_run_cancelled_while_its_worker_dies_ends_interrupted_and_never_restarts(cluster):
    victim = cluster.add_worker()
    client = cluster.client
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, SLOW, input={}, config=slow(2))
    await _running_on(victim, run, 1)
    victim.proc.send_signal(signal.SIGSTOP)  # frozen: it never sees the cancel
    successor = cluster.add_worker()
    await client.runs.cancel(thread_id, run["run_id"])
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait()
    done = await run_status(client, thread_id, run["run_id"], FINISHED, timeout=60)
    assert done["status"] == "interrupted"
    assert f"run {run['run_id']} on thread" not in successor.output()  # it was never started again
    assert (await client.threads.get(thread_id))["status"] == "interrupted"
    # the thread takes its next run
    after = await client.runs.wait(thread_id, SLOW, input={}, config=slow(0.01))
    assert len(after["steps"]) == 5


@pytest.mark.parametrize(
    "fail, error",
    [
        # the graph's own database error is the graph's failure: not handed back and retried as ours would be
        ("operational", {"error": "OperationalError", "message": "the graph's own database is down"}),
        # a node's own timeout is its error, not the run's BG_JOB_TIMEOUT_SECS
        ("timeout", {"error": "TimeoutError", "message": "the graph's own call timed out"}),
    ],
)
async def test_a_graphs_own_errors_that_look_like_ours_fail_the_run_once(client, http, fail, error):
    thread_id = await new_thread(client)
    r = http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": "failing", "input": {"fail": fail}})
    assert r.json()["__error__"] == error
    (run,) = await client.runs.list(thread_id)
    assert run["status"] == "error"
    history = await client.threads.get_history(thread_id)
    assert {h["metadata"].get("run_attempt") for h in history} == {1}


async def test_sigterm_on_a_single_process_server_lets_its_runs_finish(postgres_server):
    database_uri = create_database(postgres_server)
    server = ServerProcess(env={"DATABASE_URI": database_uri, "DRAIN_TIMEOUT_SECS": "30"})
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            thread_id = http.post("/threads", json={}).json()["thread_id"]
            run = http.post(f"/threads/{thread_id}/runs", json={"assistant_id": SLOW, "input": {}, "config": slow(0.4)}).json()
            deadline = time.monotonic() + 30
            while http.get(f"/threads/{thread_id}/runs/{run['run_id']}").json()["status"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.02)
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(60)
        server.stop()
        with psycopg.connect(database_uri) as conn:
            status, attempt = conn.execute("SELECT status, attempt FROM run WHERE run_id = %s", (run["run_id"],)).fetchone()
        assert (status, attempt) == ("success", 1)  # finished in the drain, not handed back
        assert "draining 1 runs" in server.output()
        assert "CRITICAL" not in server.output()
    finally:
        server.stop()
        drop_database(postgres_server, database_uri)


async def test_a_second_cancel_during_the_unwind_of_the_first_is_ignored(client, database_uri):
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "cleanup", input={})
    await run_status(client, thread_id, run["run_id"], {"running"})
    await client.runs.cancel(thread_id, run["run_id"])
    await asyncio.sleep(0.2)  # the graph is cleaning up after the first cancel
    await client.runs.cancel(thread_id, run["run_id"])
    done = await run_status(client, thread_id, run["run_id"], FINISHED, timeout=10)
    assert done["status"] == "interrupted"
    # the second cancel did not cut the graph's cleanup short
    with psycopg.connect(database_uri) as conn:
        rows = conn.execute("SELECT value FROM store WHERE prefix = 'cleanup' AND key = %s", (run["run_id"],)).fetchall()
    assert rows == [({"done": True},)]
