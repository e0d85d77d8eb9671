"""The queue in-process on a real PostgreSQL: a queue task that dies fails the worker, for its process to exit."""
from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg

from agent_server.storage import database
from conftest import create_database, drop_database


async def test_a_queue_task_that_dies_marks_the_worker_failed_and_says_so(postgres_server, caplog):
    from agent_server.broker import MemoryBroker
    from agent_server.config import load_settings
    from agent_server.runtime import Runtime
    from agent_server.worker.consumer import QueueWorker
    from conftest import CONFIG

    class BrokerThatBreaks(MemoryBroker):
        """Our in-process broker, which stops accepting subscriptions once told to."""

        broken = False

        def subscribe(self, channel):
            if self.broken:
                raise RuntimeError("the broker broke")
            return super().subscribe(channel)

    settings = load_settings(CONFIG)
    settings.database_uri = create_database(postgres_server)
    rt = await Runtime.start(settings)
    rt.broker = BrokerThatBreaks()
    worker = QueueWorker(rt)
    try:
        await worker.start()
        rt.broker.end_subscriptions()  # a shutdown of the API side: the queue subscribes again...
        await asyncio.sleep(0.1)
        assert not worker.failed.is_set() and "CRITICAL" not in caplog.text
        rt.broker.broken = True  # ...but now it cannot: the queue is dead, the process must restart
        rt.broker.end_subscriptions()
        await asyncio.wait_for(worker.failed.wait(), 10)
        assert "queue task queue-listen stopped" in caplog.text
    finally:
        await worker.stop()
        await rt.close()
        drop_database(postgres_server, settings.database_uri)


async def test_a_worker_that_cannot_renew_its_leases_stops_its_runs_before_others_take_them(postgres_server, caplog):
    import psycopg

    from agent_server.graphs import default_assistant_id
    from agent_server.services import SYSTEM, runs
    from run_helpers import slow

    async with _queue(postgres_server, lease_secs=1.5) as (rt, worker):
        await worker.start()
        run = await runs.create(rt, SYSTEM, None, default_assistant_id("slow"), {"input": {}, "config": slow(2)})
        while run["run_id"] not in worker.active:
            await asyncio.sleep(0.05)
        async with await psycopg.AsyncConnection.connect(rt.settings.database_uri) as blocker:
            # The run's row held by another session: the worker's renewals cannot get through.
            await blocker.execute("BEGIN")
            await blocker.execute("SELECT 1 FROM run WHERE run_id = %s FOR UPDATE", (run["run_id"],))
            deadline = asyncio.get_running_loop().time() + 10
            while "leases not renewed" not in caplog.text:
                assert asyncio.get_running_loop().time() < deadline, "the worker went on executing the run"
                await asyncio.sleep(0.1)
            await blocker.execute("ROLLBACK")
        assert worker.active.get(run["run_id"]) is None or worker.active[run["run_id"]].control.reason == "release"


async def test_a_run_with_nothing_ahead_of_it_is_claimed_by_its_creation_when_this_process_has_a_free_slot(postgres_server):
    """Created in a process whose queue has a free slot, a run on a new or idle thread is claimed in the statement
    that queues it: it executes here as soon as `create` returns (the queue's loop would need a wake-up and a claim
    query first), while the answer still shows it queued. A run behind another on its thread, a run created
    while the slots are full and a run created after the worker began to stop are only queued."""
    from agent_server.graphs import default_assistant_id
    from agent_server.services import SYSTEM, runs
    from run_helpers import slow, wait_for

    async with _queue(postgres_server, concurrency=2) as (rt, worker):
        slow_graph = default_assistant_id("slow")

        async def row(run_id):
            return await rt.queue.one("SELECT status, attempt, lease_owner FROM run WHERE run_id = %s", (run_id,))

        await worker.start()
        thread = await _new_thread(rt)
        first = await runs.create(rt, SYSTEM, thread, slow_graph, {"input": {}, "config": slow(0.3)})
        assert first["run_id"] in worker.active and first["status"] == "pending"
        assert await row(first["run_id"]) == {"status": "running", "attempt": 1, "lease_owner": worker.worker_id}
        behind = await runs.create(rt, SYSTEM, thread, slow_graph, {"input": {}, "config": slow(0.01)})
        assert behind["run_id"] not in worker.active and (await row(behind["run_id"]))["status"] == "pending"
        stateless = await runs.create(rt, SYSTEM, None, slow_graph, {"input": {}, "config": slow(0.3)})
        assert stateless["run_id"] in worker.active  # its own thread: nothing ahead of it
        full = await runs.create(rt, SYSTEM, None, slow_graph, {"input": {}, "config": slow(0.01)})
        assert full["run_id"] not in worker.active and (await row(full["run_id"]))["status"] == "pending"
        for run in (first, behind, stateless, full):  # every one ends, the queued ones started by the queue
            await wait_for(lambda r=run: _ended(rt, r["run_id"]), timeout=20)
        await worker.stop()
        after = await runs.create(rt, SYSTEM, None, slow_graph, {"input": {}, "config": slow(0.01)})
        assert (await row(after["run_id"]))["status"] == "pending"


async def _new_thread(rt):
    from agent_server.services import SYSTEM, threads

    return (await threads.create(rt, SYSTEM, None, metadata={}, if_exists="raise", ttl=None, supersteps=None))["thread_id"]


async def _ended(rt, run_id) -> bool:
    """Ended well: a success, or gone (a stateless run goes with its thread when it ends, and only then)."""
    row = await rt.queue.one("SELECT status FROM run WHERE run_id = %s", (run_id,))
    return row is None or row["status"] == "success"


async def _runtime(postgres_server, lease_secs: float | None = None):
    from agent_server.config import load_settings
    from agent_server.runtime import Runtime
    from conftest import CONFIG

    settings = load_settings(CONFIG)
    settings.database_uri = create_database(postgres_server)
    if lease_secs is not None:
        settings.lease_secs = lease_secs
    return await Runtime.start(settings)


@contextlib.asynccontextmanager
async def _queue(postgres_server, lease_secs: float | None = None, **worker_options):
    """A runtime on a fresh database and its queue worker (not started yet); stopped, closed and dropped after."""
    from agent_server.worker.consumer import QueueWorker

    rt = await _runtime(postgres_server, lease_secs)
    worker = QueueWorker(rt, **worker_options)
    try:
        yield rt, worker
    finally:
        await worker.stop()
        await rt.close()
        drop_database(postgres_server, rt.settings.database_uri)


def _gated(call, after: bool = False):
    """`call`, held at a gate (before the call, or once it returned) until the test opens it; `entered` is set on the way."""
    entered, gate = asyncio.Event(), asyncio.Event()

    async def held(*args, **kwargs):
        if not after:
            entered.set()
            await gate.wait()
        result = await call(*args, **kwargs)
        if after:
            entered.set()
            await gate.wait()
        return result

    return held, entered, gate


async def test_a_worker_never_executes_more_runs_than_its_concurrency_when_a_creation_and_a_claim_race(postgres_server):
    """A run created while the queue's claim is in flight takes the free slot at once; the claim may return a run
    for that same slot: it goes straight back to the queue (not executed here beyond the concurrency), and runs
    when the slot is free again."""
    from agent_server.graphs import default_assistant_id
    from agent_server.services import SYSTEM, runs
    from run_helpers import slow, wait_for

    slow_graph = default_assistant_id("slow")
    most = 0
    attempts = {}  # run id -> the attempt it executed as

    async with _queue(postgres_server, concurrency=1) as (rt, worker):
        async def watch():
            nonlocal most
            while True:
                most = max(most, len(worker.active))
                attempts.update((run_id, a.attempt) for run_id, a in worker.active.items())
                await asyncio.sleep(0)

        watcher = asyncio.create_task(watch())
        try:
            waiting = await runs.create(rt, SYSTEM, None, slow_graph, {"input": {}, "config": slow(0.01)})  # no worker yet
            rt.queue.claim_next, entered, gate = _gated(rt.queue.claim_next)
            await worker.start()
            await asyncio.wait_for(entered.wait(), 10)  # the queue's first claim is in flight, one slot free
            created = await runs.create(rt, SYSTEM, None, slow_graph, {"input": {}, "config": slow(0.2)})
            assert list(worker.active) == [created["run_id"]]
            gate.set()  # the claim returns the waiting run: no slot left for it
            await wait_for(lambda: _no_runs(rt), timeout=20)  # both ran to their end (a stateless run goes with its thread)
            assert most == 1
            # the waiting run ran once the slot was free, as its first attempt (the claim that handed it back never ran it)
            assert attempts[waiting["run_id"]] == 1
        finally:
            watcher.cancel()


async def test_a_run_whose_creation_is_cancelled_after_it_committed_still_executes(postgres_server):
    """The caller of a run's creation may be cancelled (a client gone, a shutdown) after the statement that queued and
    claimed the run committed: the run is executed all the same, not left claimed by a worker that never runs it."""
    from agent_server.graphs import default_assistant_id
    from agent_server.services import SYSTEM, runs
    from run_helpers import slow, wait_for

    async with _queue(postgres_server, concurrency=2) as (rt, worker):
        await worker.start()
        rt.runs.create, entered, gate = _gated(rt.runs.create, after=True)
        caller = asyncio.create_task(
            runs.create(rt, SYSTEM, None, default_assistant_id("slow"), {"input": {}, "config": slow(0.01)}))
        await asyncio.wait_for(entered.wait(), 10)  # committed, not yet returned
        caller.cancel()
        await asyncio.gather(caller, return_exceptions=True)
        gate.set()
        # a stateless run goes with its thread when it ends: none left, none running
        await wait_for(lambda: _no_runs(rt), timeout=10)


async def _no_runs(rt) -> bool:
    return await rt.queue.all("SELECT run_id FROM run") == []


async def test_a_queue_task_stuck_on_its_way_out_does_not_hold_the_workers_stop(postgres_server, caplog, monkeypatch):
    """A task of the queue that does not end when cancelled (a network call that never returns) is left behind after
    STOP_SECONDS, named in the log: the process still stops (a deploy must not hang on it)."""
    from agent_server.worker import consumer
    from agent_server.worker.consumer import QueueWorker

    monkeypatch.setattr(consumer, "STOP_SECONDS", 1.0)
    rt = await _runtime(postgres_server)
    worker = QueueWorker(rt)
    released = asyncio.Event()

    async def deaf():
        while not released.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue  # as a call stuck in a library would: cancelled, and still there

    try:
        await worker.start()
        worker._tasks.append(asyncio.create_task(deaf(), name="queue-deaf"))
        await asyncio.wait_for(worker.stop(), 5)
        assert "queue task queue-deaf did not stop within 1s" in caplog.text
    finally:
        released.set()
        worker._tasks[-1].cancel()
        await rt.close()
        drop_database(postgres_server, rt.settings.database_uri)


async def test_a_run_claimed_by_a_creation_whose_answer_was_lost_is_handed_back_at_once(postgres_server, caplog):
    """The statement that queues and claims a run may commit while its answer is lost (the connection drops): the
    caller sees the error, and the run, claimed for this worker but executed by nothing here, goes back to the queue
    at once and runs, instead of waiting out its lease (a minute here) for the sweep."""
    import psycopg
    import pytest

    from agent_server.graphs import default_assistant_id
    from agent_server.services import SYSTEM, runs
    from run_helpers import slow, wait_for

    async with _queue(postgres_server, concurrency=2, lease_secs=60) as (rt, worker):
        create = rt.runs.create

        async def committed_but_lost(new, conn=None, **kwargs):
            await create(new, conn, **kwargs)
            raise psycopg.OperationalError("server closed the connection unexpectedly")

        await worker.start()
        rt.runs.create = committed_but_lost
        with pytest.raises(psycopg.OperationalError):
            await runs.create(rt, SYSTEM, None, default_assistant_id("slow"), {"input": {}, "config": slow(0.01)})
        rt.runs.create = create
        # a stateless run goes with its thread when it ends: none left means it ran
        await wait_for(lambda: _no_runs(rt), timeout=10)
        assert "its creation failed after claiming it; handed back (now pending)" in caplog.text


async def test_a_run_created_while_others_wait_in_the_queue_does_not_start_ahead_of_them(postgres_server):
    """When the queue's last claim filled every free slot, runs may still be waiting: a run created when a slot
    frees, before the queue's next claim, is only queued (behind them), not claimed by its creation ahead of them."""
    from agent_server.graphs import default_assistant_id
    from agent_server.services import SYSTEM, runs
    from run_helpers import slow, wait_for

    async with _queue(postgres_server, concurrency=1) as (rt, worker):
        slow_graph = default_assistant_id("slow")

        async def running():
            return len(worker.active)

        async def idle():
            return not worker.active

        for _ in range(3):
            await runs.create(rt, SYSTEM, None, slow_graph, {"input": {}, "config": slow(0.2)})
        await worker.start()
        await wait_for(running)  # the first claim took the one free slot; two still wait
        rt.queue.claim_next, entered, gate = _gated(rt.queue.claim_next)
        await wait_for(idle)  # the first run ended: its slot is free, the next claim held at the gate
        await asyncio.wait_for(entered.wait(), 10)
        late = await runs.create(rt, SYSTEM, None, slow_graph, {"input": {}, "config": slow(0.01)})
        assert late["run_id"] not in worker.active
        row = await rt.queue.one("SELECT status FROM run WHERE run_id = %s", (late["run_id"],))
        assert row["status"] == "pending"
        gate.set()
        await wait_for(lambda: _no_runs(rt), timeout=20)  # all of them ran (a stateless run goes with its thread)


async def test_a_run_whose_thread_becomes_followed_logs_its_events_after_the_next_heartbeat(postgres_server):
    """The broker's word to a worker that a running run's thread is now followed can be lost (a Redis blip): the
    heartbeat says so too, and the run logs its events for thread event streams from then on."""
    from agent_server.graphs import default_assistant_id
    from agent_server.serde import loads
    from agent_server.services import SYSTEM, runs
    from run_helpers import slow, wait_for

    async with _queue(postgres_server, concurrency=2, lease_secs=3) as (rt, worker):  # a heartbeat every 0.5 s
        await worker.start()
        thread = await _new_thread(rt)
        run = await runs.create(rt, SYSTEM, thread, default_assistant_id("slow"),
                                {"input": {}, "config": slow(0.4), "stream_mode": ["updates"]})
        assert run["run_id"] in worker.active
        assert await rt.thread_events.watch(thread) == [run["run_id"]]  # followed now; no word through the broker
        await wait_for(lambda: _ended(rt, run["run_id"]), timeout=20)
        logged = [loads(row["event"]) for row in await rt.thread_events.after(thread, 0)]
        assert logged[0]["params"]["data"]["event"] == "running"
        assert any(e["method"] == "updates" for e in logged)
        assert logged[-1]["params"]["data"]["event"] == "completed"


async def test_a_hand_back_whose_answer_is_lost_too_never_releases_the_run_from_under_its_execution(postgres_server, caplog):
    """The creation's answer is lost, and so is the first hand-back's (it committed: the run is queued again). The
    worker retries the hand-back meanwhile, so it must not claim that run itself: the retry's fence (this worker,
    attempt 1) would match its own new claim and release the run while it executes. The run executes once."""
    import logging

    import psycopg
    import pytest

    from agent_server.broker import WAKE
    from agent_server.graphs import default_assistant_id
    from agent_server.services import SYSTEM, runs
    from run_helpers import slow, wait_for

    caplog.set_level(logging.INFO, logger="agent_server")
    async with _queue(postgres_server, concurrency=2) as (rt, worker):
        create, release = rt.runs.create, rt.queue.release
        lost = []

        async def committed_but_lost(new, conn=None, **kwargs):
            await create(new, conn, **kwargs)
            raise psycopg.OperationalError("server closed the connection unexpectedly")

        async def first_release_lost(run, **kwargs):
            status = await release(run, **kwargs)
            if not lost:
                lost.append(status)
                await rt.broker.publish(WAKE, b"")  # a run queued elsewhere wakes the queue meanwhile
                raise psycopg.OperationalError("server closed the connection unexpectedly")
            return status

        await worker.start()
        rt.runs.create, rt.queue.release = committed_but_lost, first_release_lost
        with pytest.raises(psycopg.OperationalError):
            await runs.create(rt, SYSTEM, None, default_assistant_id("slow"), {"input": {}, "config": slow(0.4)})
        rt.runs.create = create
        await wait_for(lambda: _no_runs(rt), timeout=20)  # it ran to its end (a stateless run goes with its thread)
        assert lost == ["pending"]  # the first hand-back did put it back in the queue
        assert caplog.text.count(" started (attempt ") == 1


async def test_a_run_followed_while_in_a_node_that_streams_nothing_more_still_logs_its_end(postgres_server):
    """Followed mid-node, then cancelled before the node streamed anything: the thread's log still shows the run
    running and how it ended."""
    from agent_server.graphs import default_assistant_id
    from agent_server.serde import loads
    from agent_server.services import SYSTEM, runs, thread_stream
    from run_helpers import slow, wait_for

    async with _queue(postgres_server, concurrency=2) as (rt, worker):
        await worker.start()
        thread = await _new_thread(rt)
        run = await runs.create(rt, SYSTEM, thread, default_assistant_id("slow"),
                                {"input": {}, "config": slow(5), "stream_mode": ["updates"]})
        await thread_stream.watch(rt, thread)

        async def told():
            return worker.active[run["run_id"]].control.watched

        await wait_for(told)
        await runs.cancel_one(rt, SYSTEM, thread, run["run_id"], "interrupt", wait=True)

        async def logged():  # the end is logged once recorded, after the run's followers heard it
            rows = [loads(row["event"]) for row in await rt.thread_events.after(thread, 0)]
            return len(rows) == 2 and [(e["method"], e["params"]["data"]["event"]) for e in rows]

        assert await wait_for(logged) == [("lifecycle", "running"), ("lifecycle", "failed")]  # a cancel: failed


async def test_a_cancel_message_with_an_action_it_does_not_know_cancels_nothing(postgres_server, caplog):
    """A cancel message whose action this worker does not know (a newer process's, say) is ignored and said in the
    log, not taken for an interrupt."""
    import logging

    from agent_server.broker import CANCEL
    from agent_server.graphs import default_assistant_id
    from agent_server.services import SYSTEM, runs
    from run_helpers import slow, wait_for

    caplog.set_level(logging.INFO, logger="agent_server")
    async with _queue(postgres_server, concurrency=2) as (rt, worker):
        await worker.start()
        run = await runs.create(rt, SYSTEM, None, default_assistant_id("slow"), {"input": {}, "config": slow(0.1)})
        await rt.broker.publish(CANCEL, f"{run['run_id']} pause".encode())
        await wait_for(lambda: _no_runs(rt), timeout=20)  # ended well: a stateless run goes with its thread
        assert "ignored a malformed cancel message" in caplog.text
        assert f"run {run['run_id']} on thread {run['thread_id']} ended: success" in caplog.text


async def test_a_pool_larger_than_the_database_accepts_is_logged_at_start_with_what_to_set(postgres_server, caplog):
    async with await psycopg.AsyncConnection.connect(postgres_server) as conn:
        allowed = (await (await conn.execute(database.ALLOWED_CONNECTIONS)).fetchone())[0]
    for size in (allowed, allowed + 1):
        caplog.clear()
        await (await database.open_pool(postgres_server, max_size=size)).close()
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        if size == allowed:
            assert warned == []
        else:
            (message,) = warned
            assert f"up to {allowed + 1} PostgreSQL connections" in message and f"accepts {allowed} in all" in message
            assert "LANGGRAPH_POSTGRES_POOL_MAX_SIZE" in message


async def test_a_process_opens_no_more_postgres_connections_than_langgraph_postgres_pool_max_size(postgres_server, monkeypatch):
    monkeypatch.setenv("LANGGRAPH_POSTGRES_POOL_MAX_SIZE", "3")
    rt = await _runtime(postgres_server)
    try:
        assert rt.pool.max_size == 3

        async def hold():
            async with rt.pool.connection() as conn:
                await conn.execute("SELECT pg_sleep(0.3)")

        await asyncio.gather(*(hold() for _ in range(6)))  # twice as many as it may open: they take turns
        backends = await rt.queue.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        assert backends <= 2  # besides the one asking: at most 3 in all
    finally:
        await rt.close()
        drop_database(postgres_server, rt.settings.database_uri)
