"""The TTL sweep (`expire_threads`, which the queue's housekeeping calls), run here in-process on the
database of a server of this module's own (the sweep acts on every thread of a database: never the
shared one): it never takes a thread from under a queued run, deletes an expired thread's checkpoints
with it, and applies `keep_latest`."""
from __future__ import annotations

import asyncio
import time

import pytest

from agent_server.config import load_settings
from agent_server.runtime import Runtime
from agent_server.services.threads import expire_threads
from conftest import CONFIG, fresh_database, serve

TINY_TTL = 0.001  # minutes


@pytest.fixture(scope="module")
def database_uri(postgres_server):
    """This module's own database (overrides the shared one for its tests)."""
    yield from fresh_database(postgres_server)


@pytest.fixture(scope="module")
def server(database_uri):
    """This module's own server on its own database (overrides the shared one: `client` talks to it)."""
    yield from serve(database_uri)


@pytest.fixture
async def rt(database_uri):
    settings = load_settings(CONFIG)
    settings.database_uri = database_uri
    runtime = await Runtime.start(settings)
    yield runtime
    await runtime.close()


async def _expired(rt, thread_id) -> None:
    async with rt.pool.connection() as conn:
        while not (await (await conn.execute(
            "SELECT expires_at < now() AS past FROM thread WHERE thread_id = %s", (thread_id,)
        )).fetchone())["past"]:
            await asyncio.sleep(0.05)


async def _checkpoint_rows(rt, thread_id) -> dict[str, int]:
    async with rt.pool.connection() as conn:
        return {
            table: (await (await conn.execute(
                f"SELECT count(*) AS n FROM {table} WHERE thread_id = %s", (str(thread_id),)
            )).fetchone())["n"]
            for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
        }


async def _say(client, thread_id, text: str) -> None:
    await client.runs.wait(thread_id, "echo", input={"messages": [{"role": "user", "content": text}]})


async def test_an_expired_thread_with_a_queued_run_stays_until_the_run_is_done_then_goes_with_its_checkpoints(rt, client):
    thread = await client.threads.create(ttl={"strategy": "delete", "ttl": TINY_TTL})
    thread_id = thread["thread_id"]
    await _say(client, thread_id, "before")  # some checkpoints to delete later
    run = await client.runs.create(thread_id, "echo", input={"messages": [{"role": "user", "content": "queued"}]},
                                   after_seconds=8)
    await _expired(rt, thread_id)

    await expire_threads(rt)
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "pending"  # still queued, not deleted

    await client.runs.join(thread_id, run["run_id"])
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "success"
    assert [m["content"] for m in (await client.threads.get_state(thread_id))["values"]["messages"]] == [
        "before", "echo: before", "queued", "echo: queued"]

    # Done: now the sweep deletes it (the server's own housekeeping may be first), checkpoints included.
    deadline = time.monotonic() + 30
    while await rt.threads.exists(thread["thread_id"]):
        assert time.monotonic() < deadline, "the expired thread was never deleted"
        await expire_threads(rt)
        await asyncio.sleep(0.1)
    assert await _checkpoint_rows(rt, thread_id) == {"checkpoints": 0, "checkpoint_blobs": 0, "checkpoint_writes": 0}


async def test_an_expired_keep_latest_thread_keeps_its_latest_state_and_loses_older_checkpoints(rt, client):
    thread = await client.threads.create(ttl={"strategy": "keep_latest", "ttl": TINY_TTL})
    thread_id = thread["thread_id"]
    await _say(client, thread_id, "one")
    await _say(client, thread_id, "two")
    before = await client.threads.get_state(thread_id)
    assert len(await client.threads.get_history(thread_id, limit=100)) > 1
    expires_before = (await rt.threads.get(thread_id, include_ttl=True))["ttl"]["expires_at"]
    await _expired(rt, thread_id)

    await expire_threads(rt)

    after = await rt.threads.get(thread_id, include_ttl=True)  # the thread is kept, its TTL renewed
    assert after["ttl"]["strategy"] == "keep_latest" and after["ttl"]["expires_at"] > expires_before
    assert (await client.threads.get_state(thread_id))["values"] == before["values"]
    history = await client.threads.get_history(thread_id, limit=100)
    assert [h["checkpoint_id"] for h in history] == [before["checkpoint_id"]]
    # The next run builds on the state kept.
    await _say(client, thread_id, "three")
    assert [m["content"] for m in (await client.threads.get_state(thread_id))["values"]["messages"]] == [
        "one", "echo: one", "two", "echo: two", "three", "echo: three"]
