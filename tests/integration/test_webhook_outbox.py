"""The webhook outbox on a real PostgreSQL: every way a run ends queues its webhook in the same transaction,
and a claim is a lease another deliverer takes over when it lapses."""
from __future__ import annotations

import uuid

import pytest

from agent_server.status import RunStatus
from agent_server.storage import database
from agent_server.storage.queue import MAX_FAILURES, QueueRepo
from agent_server.storage.runs import NewRun, RunRepo
from agent_server.storage.webhooks import WebhookRepo
from conftest import create_database, drop_database

URL = "https://hooks.example.com/done"


@pytest.fixture
async def repos(postgres_server):
    uri = create_database(postgres_server)
    pool = await database.open_pool(uri, max_size=5)
    await database.migrate(pool)
    yield RunRepo(pool), QueueRepo(pool), WebhookRepo(pool)
    await pool.close()
    drop_database(postgres_server, uri)


async def _queue(runs: RunRepo, thread=None, webhook: str | None = URL) -> tuple[uuid.UUID, uuid.UUID]:
    thread, run_id = thread or uuid.uuid4(), uuid.uuid4()
    await runs.create(NewRun(run_id, thread, uuid.uuid4(), "echo", kwargs={"webhook": webhook}, if_not_exists="create"))
    return thread, run_id


async def _outbox(runs: RunRepo) -> dict[uuid.UUID, dict]:
    return {r["run_id"]: r["payload"] for r in await runs.all("SELECT run_id, payload FROM webhook_outbox")}


async def test_a_finished_run_queues_its_webhook_and_a_stale_execution_none(repos):
    runs, queue, _ = repos
    _, run_id = await _queue(runs)
    _, silent = await _queue(runs, webhook=None)
    claimed = {r["run_id"]: r for r in await queue.claim("w1", 10, 30, [])}
    ended = dict(status=RunStatus.SUCCESS, output={}, thread_status=None, values={"n": 1}, interrupts={})
    assert not await queue.finish({**claimed[run_id], "attempt": 99}, **ended)  # not this execution's any more
    assert await _outbox(runs) == {}
    assert await queue.finish(claimed[run_id], **ended)
    assert await queue.finish(claimed[silent], **ended)
    payload = (await _outbox(runs))[run_id]
    assert list(await _outbox(runs)) == [run_id]  # the run without a webhook queued none
    assert (payload["status"], payload["values"], payload["kwargs"]["webhook"]) == ("success", {"n": 1}, URL)
    assert payload["run_started_at"] and payload["run_ended_at"] and "error" not in payload


@pytest.mark.parametrize("action", ["interrupt", "rollback"])
async def test_a_pending_run_cancelled_queues_its_webhook(repos, action):
    runs, _, _ = repos
    thread, first = await _queue(runs)
    _, second = await _queue(runs, thread)
    await runs.cancel(thread, [second], action)
    [payload] = (await _outbox(runs)).values()
    assert (payload["run_id"], payload["status"], payload["run_started_at"]) == (str(second), "interrupted", None)
    assert payload["error"]["error"] == {"interrupt": "UserInterrupt", "rollback": "UserRollback"}[action]


async def test_runs_the_sweep_or_a_hand_back_ends_queue_their_webhooks(repos):
    runs, queue, _ = repos
    _, cancelled = await _queue(runs)
    _, lost = await _queue(runs)
    _, failing = await _queue(runs)
    await runs.execute("UPDATE run SET failures = %s WHERE run_id = ANY(%s)", (MAX_FAILURES - 1, [lost, failing]))
    claimed = {r["run_id"]: r for r in await queue.claim("w1", 10, 30, [])}
    await runs.cancel(None, [cancelled], "interrupt")  # asked of its worker, which then dies
    await runs.execute("UPDATE run SET lease_expires_at = now() - interval '1 second' WHERE run_id = ANY(%s)", ([cancelled, lost],))
    await queue.sweep()
    assert await queue.release(claimed[failing], retry=True) == RunStatus.ERROR
    outbox = await _outbox(runs)
    assert {run_id: p["status"] for run_id, p in outbox.items()} == {cancelled: "interrupted", lost: "error", failing: "error"}
    assert outbox[lost]["error"]["error"] == outbox[failing]["error"]["error"] == "RunFailedRepeatedly"


async def test_a_claim_is_a_lease_and_only_the_current_claim_reschedules(repos):
    runs, queue, webhooks = repos
    assert await webhooks.next_due_in() is None  # nothing to deliver: the deliverer sleeps (it spun at 100 Hz)
    _, run_id = await _queue(runs)
    [run] = await queue.claim("w1", 10, 30, [])
    await queue.finish(run, status=RunStatus.SUCCESS, output={}, thread_status=None, values={}, interrupts={})
    assert await webhooks.next_due_in() == 0.0  # due now
    [first] = await webhooks.claim(10, 60)
    assert first["run_id"] == run_id and first["attempts"] == 1
    assert await webhooks.claim(10, 60) == []  # leased
    assert 59 < await webhooks.next_due_in() <= 60
    await runs.execute("UPDATE webhook_outbox SET available_at = now()")  # as if its deliverer died
    [second] = await webhooks.claim(10, 60)
    assert (second["id"], second["attempts"]) == (first["id"], 2)
    await webhooks.retry(first, 0)  # the first deliverer, late: its try no longer counts
    assert await webhooks.claim(10, 60) == []
    await webhooks.retry(second, 0)
    [third] = await webhooks.claim(10, 60)
    await webhooks.done(third)
    assert await _outbox(runs) == {}
