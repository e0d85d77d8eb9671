"""The claim of due crons on a real PostgreSQL, by two runtimes as two processes have: each due firing is
one run, however the schedulers interleave; a cron due for a long time fires once."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
import pytest

from conftest import CONFIG, create_database, drop_database

ECHO = {"input": {"messages": [{"role": "user", "content": "tick"}]}}


def _far_daily() -> str:
    """A daily schedule whose next tick is about 12 hours away: however slow the test, no tick falls in it."""
    return f"0 {(datetime.now(UTC).hour + 12) % 24} * * *"


@pytest.fixture
async def two_runtimes(postgres_server):
    """Two runtimes (pools) on one fresh database, and its URI; no queue runs: the runs stay pending."""
    from agent_server.config import load_settings
    from agent_server.runtime import Runtime

    settings = load_settings(CONFIG)
    settings.database_uri = uri = create_database(postgres_server)
    runtimes = []
    try:
        for _ in range(2):
            runtimes.append(await Runtime.start(settings))
        yield runtimes, uri
    finally:
        for rt in runtimes:
            await rt.close()
        drop_database(postgres_server, uri)


async def _due_crons(rt, uri: str, n: int, **options) -> list:
    """`n` stateless daily crons (runs kept), all made due three days ago: a scheduler down that long."""
    from agent_server.graphs import default_assistant_id
    from agent_server.services import SYSTEM, crons

    made = [
        await crons.create(
            rt, SYSTEM, None, default_assistant_id("echo"), ECHO, schedule=_far_daily(), timezone=None,
            end_time=None, enabled=True, on_run_completed="keep", **options,
        )
        for _ in range(n)
    ]
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("UPDATE cron SET next_run_date = now() - interval '3 days'")
    return [c["cron_id"] for c in made]


def _runs_by_cron(uri: str) -> dict[str, int]:
    with psycopg.connect(uri) as conn:
        rows = conn.execute(
            "SELECT kwargs->'config'->'configurable'->>'cron_id', count(*) FROM run GROUP BY 1"
        ).fetchall()
    return dict(rows)


async def test_two_schedulers_firing_at_once_queue_one_run_per_due_cron(two_runtimes):
    from agent_server.services.crons import fire_due

    (rt1, rt2), uri = two_runtimes
    cron_ids = await _due_crons(rt1, uri, 20)
    await asyncio.gather(fire_due(rt1), fire_due(rt2), fire_due(rt1), fire_due(rt2))
    # each fired once for the three days it missed, not once per missed tick
    assert _runs_by_cron(uri) == {str(cron_id): 1 for cron_id in cron_ids}
    with psycopg.connect(uri) as conn:
        assert conn.execute("SELECT count(*) FROM cron WHERE next_run_date <= now()").fetchone()[0] == 0


async def test_a_cron_claimed_by_one_scheduler_is_skipped_by_the_other_and_not_due_once_committed(two_runtimes):
    from agent_server.services.crons import _fire_one, fire_due

    (rt1, rt2), uri = two_runtimes
    [cron_id] = await _due_crons(rt1, uri, 1)
    async with rt1.crons.claim_due([]) as claim:  # the first scheduler holds the claim, uncommitted...
        assert claim.cron["cron_id"] == cron_id
        await fire_due(rt2)  # ...the second finds nothing it may fire, and does not wait for it
        assert _runs_by_cron(uri) == {}
    # the first claim ended without advancing the cron (as a scheduler that died mid-firing): still due
    assert await _fire_one(rt1, []) == cron_id
    await asyncio.gather(fire_due(rt1), fire_due(rt2))
    assert _runs_by_cron(uri) == {str(cron_id): 1}


async def test_a_firing_whose_run_is_refused_still_moves_the_cron_on(two_runtimes):
    """A run refused (its thread busy and multitask_strategy reject) is logged; the cron waits for its next tick
    rather than being retried without end."""
    from agent_server.graphs import default_assistant_id
    from agent_server.services import SYSTEM, crons, runs, threads

    (rt1, rt2), uri = two_runtimes
    thread = await threads.create(rt1, SYSTEM, None, metadata={}, if_exists="raise", ttl=None, supersteps=None)
    await runs.create(rt1, SYSTEM, thread["thread_id"], default_assistant_id("echo"), ECHO)  # pending: busy
    cron = await crons.create(
        rt1, SYSTEM, thread["thread_id"], default_assistant_id("echo"), {**ECHO, "multitask_strategy": "reject"},
        schedule=_far_daily(), timezone=None, end_time=None, enabled=True, on_run_completed=None,
    )
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("UPDATE cron SET next_run_date = now() - interval '1 minute'")
    await crons.fire_due(rt2)
    assert _runs_by_cron(uri) == {None: 1}  # only the run queued through the API
    with psycopg.connect(uri) as conn:
        assert conn.execute(
            "SELECT next_run_date > now() FROM cron WHERE cron_id = %s", (cron["cron_id"],)
        ).fetchone()[0]
