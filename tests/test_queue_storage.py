"""The queue's SQL on a real PostgreSQL, where interleavings can be forced with a second connection."""
from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from agent_server.storage import database
from agent_server.storage.runs import NewRun, RunRepo
from conftest import create_database, drop_database


@pytest.fixture
async def repo(postgres_server):
    uri = create_database(postgres_server)
    pool = await database.open_pool(uri, max_size=5)
    await database.migrate(pool)
    yield RunRepo(pool), uri
    await pool.close()
    drop_database(postgres_server, uri)


async def _queue_two_runs(runs: RunRepo) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    thread, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for run_id in (first, second):
        await runs.create(NewRun(run_id, thread, uuid.uuid4(), "echo", kwargs={}, if_not_exists="create"))
    return thread, first, second


async def test_a_claim_never_starts_a_run_that_ended_while_it_was_being_claimed(repo):
    runs, uri = repo
    thread, first, second = await _queue_two_runs(runs)
    async with await psycopg.AsyncConnection.connect(uri) as other:
        async with other.transaction():
            # Another session ends the first run (as a cancel does) and has not committed yet.
            await other.execute("UPDATE run SET status = 'interrupted' WHERE run_id = %s", (first,))
            claim = asyncio.create_task(runs.claim("w1", 10, 30))
            await asyncio.sleep(0.3)  # the claim now waits on that run's row lock
        claimed = await claim
    assert first not in [r["run_id"] for r in claimed]
    assert (await runs.get(first))["status"] == "interrupted"
    # The thread was not taken by the run that did not start: its next run is claimable.
    assert [r["run_id"] for r in await runs.claim("w1", 10, 30)] == [second]


async def test_only_one_run_per_thread_runs_whatever_the_number_of_claimers(repo):
    runs, _ = repo
    threads = [await _queue_two_runs(runs) for _ in range(10)]
    results = await asyncio.gather(*(runs.claim(f"w{i}", 10, 30) for i in range(4)))
    started = [r for batch in results for r in batch]
    assert sorted(r["thread_id"] for r in started) == sorted(t for t, _, _ in threads)
    assert {r["run_id"] for r in started} == {first for _, first, _ in threads}
