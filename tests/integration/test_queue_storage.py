"""The queue's SQL on a real PostgreSQL, where interleavings can be forced with a second connection."""
from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from agent_server.status import RunStatus
from agent_server.storage import database
from agent_server.storage.queue import MAX_FAILURES, QueueRepo
from agent_server.storage.runs import NewRun, RunRepo
from agent_server.storage.thread_events import ThreadEventRepo
from conftest import create_database, drop_database


class Repos:
    def __init__(self, pool, uri: str) -> None:
        self.runs, self.queue, self.uri = RunRepo(pool), QueueRepo(pool), uri
        self.thread_events = ThreadEventRepo(pool)

    async def sql(self, statement: str, params=None) -> list[dict]:
        return await self.runs.all(statement, params)

    async def execute(self, statement: str, params=None) -> None:
        await self.runs.execute(statement, params)

    async def expire(self, run_id) -> None:
        """As if the run's worker died: its lease lapses."""
        await self.execute("UPDATE run SET lease_expires_at = now() - interval '1 second' WHERE run_id = %s", (run_id,))

    async def claim_now(self, worker: str, executing=()) -> list[dict]:
        """Claim, ignoring any backoff a failure put on a run."""
        await self.execute("UPDATE run SET available_at = now() WHERE status = 'pending'")
        return await self.queue.claim(worker, 10, 30, list(executing))


@pytest.fixture
async def repos(postgres_server):
    uri = create_database(postgres_server)
    pool = await database.open_pool(uri, max_size=5)
    await database.migrate(pool)
    yield Repos(pool, uri)
    await pool.close()
    drop_database(postgres_server, uri)


async def _queue_runs(runs: RunRepo, n: int = 2) -> tuple[uuid.UUID, list[uuid.UUID]]:
    thread, ids = uuid.uuid4(), [uuid.uuid4() for _ in range(n)]
    for run_id in ids:
        await runs.create(NewRun(run_id, thread, uuid.uuid4(), "echo", kwargs={}, if_not_exists="create"))
    return thread, ids


async def _finish(queue: QueueRepo, run: dict) -> bool:
    return await queue.finish(run, status=RunStatus.SUCCESS, output={}, thread_status=None, values={}, interrupts={})


async def test_a_claim_never_starts_a_run_that_ended_while_it_was_being_claimed(repos):
    thread, (first, second) = await _queue_runs(repos.runs)
    async with await psycopg.AsyncConnection.connect(repos.uri) as other:
        async with other.transaction():
            # Another session ends the first run (as a cancel does) and has not committed yet.
            await other.execute("UPDATE run SET status = 'interrupted' WHERE run_id = %s", (first,))
            claim = asyncio.create_task(repos.queue.claim("w1", 10, 30, []))
            await asyncio.sleep(0.3)  # the claim now waits on that run's row lock
        claimed = await claim
    assert first not in [r["run_id"] for r in claimed]
    assert (await repos.runs.get(first))["status"] == "interrupted"
    # The thread was not taken by the run that did not start: its next run is claimable.
    assert [r["run_id"] for r in await repos.queue.claim("w1", 10, 30, [])] == [second]


async def test_only_one_run_per_thread_runs_whatever_the_number_of_claimers(repos):
    threads = [await _queue_runs(repos.runs) for _ in range(10)]
    results = await asyncio.gather(*(repos.queue.claim(f"w{i}", 10, 30, []) for i in range(4)))
    started = [r for batch in results for r in batch]
    assert sorted(r["thread_id"] for r in started) == sorted(t for t, _ in threads)
    assert {r["run_id"] for r in started} == {ids[0] for _, ids in threads}


async def test_the_schema_refuses_two_running_runs_on_one_thread(repos):
    _, (first, second) = await _queue_runs(repos.runs)
    await repos.queue.claim("w1", 10, 30, [])
    with pytest.raises(psycopg.errors.UniqueViolation):
        await repos.execute("UPDATE run SET status = 'running' WHERE run_id = %s", (second,))


async def test_a_stale_execution_can_neither_finish_release_nor_renew_the_newer_one(repos):
    thread_id, (run_id,) = await _queue_runs(repos.runs, 1)
    (old,) = await repos.queue.claim("w1", 10, 30, [])
    await repos.expire(run_id)
    await repos.queue.sweep()  # the worker seemed dead: its run went back to the queue...
    (new,) = await repos.claim_now("w1")  # ...and the same worker claimed it again
    assert new["attempt"] == old["attempt"] + 1
    assert await repos.queue.heartbeat("w1", {run_id: old["attempt"]}, 30) == {}
    assert await repos.queue.release(old) is None
    assert not await _finish(repos.queue, old)
    assert not await repos.queue.finish(old, status=RunStatus.INTERRUPTED, output={}, thread_status=None, values={},
                                        interrupts={}, rollback=True)
    assert (await repos.runs.get(run_id))["status"] == "running"  # the new execution is untouched, its thread too
    assert await repos.sql("SELECT status, active_run_id, \"values\" FROM thread WHERE thread_id = %s", (thread_id,)) == [
        {"status": "busy", "active_run_id": run_id, "values": None}]
    assert await repos.queue.heartbeat("w1", {run_id: new["attempt"]}, 30) == {run_id: (None, False)}
    # someone follows the thread now: watching names the run executing on it, and its heartbeat says so
    assert await repos.thread_events.watch(thread_id) == [run_id]
    assert await repos.queue.heartbeat("w1", {run_id: new["attempt"]}, 30) == {run_id: (None, True)}
    assert await _finish(repos.queue, new)
    assert (await repos.runs.get(run_id))["status"] == "success"


async def test_a_worker_never_claims_a_run_it_still_executes(repos):
    _, (run_id,) = await _queue_runs(repos.runs, 1)
    await repos.queue.claim("w1", 10, 30, [])
    await repos.expire(run_id)
    await repos.queue.sweep()
    assert await repos.claim_now("w1", executing=[run_id]) == []
    assert [r["run_id"] for r in await repos.claim_now("w2")] == [run_id]


async def test_graceful_hand_backs_are_free_and_lost_leases_are_capped(repos):
    _, (run_id,) = await _queue_runs(repos.runs, 1)
    for _ in range(2 * MAX_FAILURES):  # rolling deploys: each drain hands the run back
        (run,) = await repos.claim_now("w1")
        assert await repos.queue.release(run) == RunStatus.PENDING
    for lost in range(1, MAX_FAILURES + 1):  # crashes
        (run,) = await repos.claim_now("w1")
        await repos.expire(run_id)
        swept = await repos.queue.sweep()
        if lost < MAX_FAILURES:
            assert swept.requeued == [run_id]
    row = (await repos.sql("SELECT status, failures, output FROM run WHERE run_id = %s", (run_id,)))[0]
    assert (row["status"], row["failures"]) == ("error", MAX_FAILURES)
    assert "cut off 3 times" in row["output"]["__error__"]["message"]


async def test_a_run_handed_back_for_a_database_failure_waits_and_is_capped(repos):
    _, (run_id,) = await _queue_runs(repos.runs, 1)
    (run,) = await repos.queue.claim("w1", 10, 30, [])
    assert await repos.queue.release(run, retry=True) == RunStatus.PENDING
    claimed, due = await repos.queue.claim_next("w1", 10, 30, [])
    assert claimed == [] and 1 < due <= 2  # it waits its backoff
    for _ in range(MAX_FAILURES - 1):
        (run,) = await repos.claim_now("w1")
        status = await repos.queue.release(run, retry=True)
    assert status == RunStatus.ERROR
    assert (await repos.runs.get(run_id))["status"] == "error"


@pytest.mark.parametrize("action", ["interrupt", "rollback"])
async def test_the_sweep_ends_a_cancelled_run_of_a_dead_worker_instead_of_requeueing_it(repos, action):
    thread, (run_id, waiting) = await _queue_runs(repos.runs)
    await repos.queue.claim("w1", 10, 30, [])
    matched, running = await repos.runs.cancel(thread, [run_id], action)
    assert running == [run_id]
    await repos.expire(run_id)  # the worker died before it saw the cancel
    swept = await repos.queue.sweep()
    assert swept.requeued == [] and [e[0] for e in swept.ended] == [run_id]
    rows = await repos.sql("SELECT status FROM run WHERE run_id = %s", (run_id,))
    assert rows == ([{"status": "interrupted"}] if action == "interrupt" else [])
    # the thread is free for its next run
    assert [r["run_id"] for r in await repos.queue.claim("w2", 10, 30, [])] == [waiting]


async def test_checkpoints_of_deleted_threads_are_collected(repos):
    kept, _ = await _queue_runs(repos.runs, 1)
    gone = uuid.uuid4()
    for thread in (kept, gone):  # as a late worker leaves them after its thread was deleted
        await repos.execute(
            """INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, checkpoint, metadata)
               VALUES (%s, '', 'c1', '{}', '{}')""",
            (str(thread),),
        )
    assert await repos.queue.collect_orphan_checkpoints() == 1
    assert [r["thread_id"] for r in await repos.sql("SELECT thread_id FROM checkpoints")] == [str(kept)]


async def test_heartbeat_and_bulk_cancel_on_many_threads_do_not_deadlock(repos):
    threads = [await _queue_runs(repos.runs, 1) for _ in range(20)]
    claimed = {r["run_id"]: r["attempt"] for r in await repos.queue.claim("w1", 50, 30, [])}
    for _ in range(10):
        await asyncio.gather(
            repos.queue.heartbeat("w1", dict(reversed(list(claimed.items()))), 30),
            repos.runs.cancel(None, [ids[0] for _, ids in threads], "interrupt"),
            repos.queue.heartbeat("w1", claimed, 30),
        )


async def test_a_run_cancelled_while_its_worker_hands_it_back_ends_instead_of_running_again(repos):
    thread, (run_id, waiting) = await _queue_runs(repos.runs)
    (run,) = await repos.queue.claim("w1", 10, 30, [])
    await repos.runs.cancel(thread, [run_id], "interrupt")  # the worker was draining: it ignores the signal
    assert await repos.queue.release(run) == RunStatus.INTERRUPTED
    assert (await repos.runs.get(run_id))["status"] == "interrupted"
    assert [r["run_id"] for r in await repos.queue.claim("w2", 10, 30, [])] == [waiting]


async def test_a_stale_execution_cannot_delete_a_temporary_thread(repos):
    thread, run_id = uuid.uuid4(), uuid.uuid4()
    await repos.runs.create(NewRun(run_id, thread, uuid.uuid4(), "echo", kwargs={}, ephemeral=True))
    (old,) = await repos.queue.claim("w1", 10, 30, [])
    await repos.expire(run_id)
    await repos.queue.sweep()
    (new,) = await repos.claim_now("w2")
    done = dict(status=RunStatus.SUCCESS, output={}, thread_status=None, values={}, interrupts={}, delete_thread=True)
    assert not await repos.queue.finish(old, **done)
    assert (await repos.runs.get(run_id))["status"] == "running"
    assert await repos.queue.finish(new, **done)
    assert await repos.sql("SELECT 1 FROM thread WHERE thread_id = %s", (thread,)) == []


async def test_the_sweep_rolls_back_a_dead_workers_run_with_its_checkpoints_before_freeing_the_thread(repos):
    thread, (run_id, _) = await _queue_runs(repos.runs)
    await repos.queue.claim("w1", 10, 30, [])
    await repos.execute(
        """INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, checkpoint, metadata)
           VALUES (%s, '', 'c1', '{}', jsonb_build_object('run_id', %s::text))""",
        (str(thread), str(run_id)),
    )
    await repos.runs.cancel(thread, [run_id], "rollback")
    await repos.expire(run_id)
    await repos.queue.sweep()
    assert await repos.sql("SELECT 1 FROM checkpoints WHERE thread_id = %s", (str(thread),)) == []
    assert await repos.sql("SELECT 1 FROM run WHERE run_id = %s", (run_id,)) == []


async def test_a_stale_execution_stores_no_resumable_events(repos):
    from agent_server.storage.events import RunEventRepo

    events = RunEventRepo(repos.runs.pool)
    _, (run_id,) = await _queue_runs(repos.runs, 1)
    (old,) = await repos.queue.claim("w1", 10, 30, [])
    assert await events.append(old, [(1, "values", b"{}")])
    await repos.expire(run_id)
    await repos.queue.sweep()
    (new,) = await repos.claim_now("w2")
    # handed in together, they go in one statement: the stale execution's are dropped, the new one's stored
    stale, fresh = await asyncio.gather(
        events.append(old, [(2, "values", b'{"stale": true}'), (3, "values", b"{}")]),
        events.append(new, [(2, "values", b'{"new": true}'), (3, "updates", b"[]")]),
    )
    assert (stale, fresh) == (False, True)
    assert [(r["seq"], r["event"], bytes(r["data"])) for r in await events.after(run_id, 0)] == [
        (1, "values", b"{}"), (2, "values", b'{"new": true}'), (3, "updates", b"[]")]


async def test_a_stale_executions_publisher_stores_and_publishes_nothing_and_keeps_nothing(repos):
    """Once its lease passed to another execution, a run's publisher drops its events: none stored, none sent to
    followers, none kept in memory until it stops; the current execution's go through."""
    from types import SimpleNamespace

    from agent_server.broker import MemoryBroker, run_channel, unpack
    from agent_server.storage.events import RunEventRepo
    from agent_server.worker.executor import _Publisher

    rt = SimpleNamespace(events=RunEventRepo(repos.runs.pool), broker=MemoryBroker())
    _, (run_id,) = await _queue_runs(repos.runs, 1)
    (old,) = await repos.queue.claim("w1", 10, 30, [])
    await repos.expire(run_id)
    await repos.queue.sweep()
    (new,) = await repos.claim_now("w2")
    resumable = lambda run: {**run, "kwargs": {**run["kwargs"], "resumable": True}}  # noqa: E731
    stale, current = _Publisher(rt, resumable(old)), _Publisher(rt, resumable(new))
    async with rt.broker.subscribe(run_channel(run_id)) as sub:
        for i in range(3):  # each after the last was refused
            await stale("custom", b'{"stale": %d}' % i)
            await stale.flush()
        assert stale._pending == [] and not sub.ready
        await current("custom", b'{"current": 0}')
        await current.flush()
        assert unpack(await sub.get(timeout=1)) == ("custom", "0", b'{"current": 0}')
    assert [bytes(r["data"]) for r in await rt.events.after(run_id, -1)] == [b'{"current": 0}']
