"""The seam custom auth uses: a policy in the caller's context hides a thread (and its runs, state
and streams) from every service function; the server itself (SYSTEM) still sees it."""
from __future__ import annotations

import pytest

from agent_server.config import load_settings
from agent_server.errors import NotFound
from agent_server.graphs import default_assistant_id
from agent_server.runtime import Runtime
from agent_server.services import SYSTEM, Context, Filter
from agent_server.services import runs, threads
from conftest import CONFIG, create_database, drop_database

class OwnerPolicy:
    """Every resource and action: only the caller's own rows (custom auth's filter, without its handlers)."""

    async def authorize(self, user, resource, action, value) -> Filter:
        return Filter(metadata={"owner": user})


ALICE = Context(user="alice", policy=OwnerPolicy())


@pytest.fixture
async def rt(postgres_server):
    settings = load_settings(CONFIG)
    settings.database_uri = create_database(postgres_server)
    runtime = await Runtime.start(settings)  # no queue worker: runs stay pending
    yield runtime
    await runtime.close()
    drop_database(postgres_server, settings.database_uri)


async def test_a_filter_hides_another_callers_thread_from_every_service(rt):
    echo = default_assistant_id("echo")
    mine = await threads.create(rt, SYSTEM, None, metadata={"owner": "alice"}, if_exists="raise", ttl=None, supersteps=None)
    theirs = await threads.create(rt, SYSTEM, None, metadata={"owner": "bob"}, if_exists="raise", ttl=None, supersteps=None)
    bob_id = theirs["thread_id"]
    their_run = await runs.create(rt, SYSTEM, bob_id, echo, {"input": {"messages": []}})

    assert [t["thread_id"] for t in await threads.search(rt, ALICE)] == [mine["thread_id"]]
    assert await threads.count(rt, ALICE) == 1
    assert await threads.count(rt, SYSTEM) == 2
    hidden = [
        threads.get(rt, ALICE, bob_id),
        threads.update(rt, ALICE, bob_id, metadata={"owner": "alice"}, ttl=None),
        threads.copy(rt, ALICE, bob_id),
        threads.storage(rt, ALICE, bob_id),
        threads.get_state(rt, ALICE, bob_id),
        threads.update_state(rt, ALICE, bob_id, {"messages": []}, as_node=None, checkpoint=None),
        threads.history(rt, ALICE, bob_id, limit=10, before=None, metadata=None, checkpoint=None),
        threads.delete(rt, ALICE, bob_id),
        runs.create(rt, ALICE, bob_id, echo, {"input": {"messages": []}}),
        runs.list_runs(rt, ALICE, bob_id, status=None, limit=10, offset=0),
        runs.get(rt, ALICE, bob_id, their_run["run_id"]),
        runs.delete(rt, ALICE, bob_id, their_run["run_id"]),
        runs.join_stream(rt, ALICE, bob_id, their_run["run_id"], None),
        runs.cancel_one(rt, ALICE, bob_id, their_run["run_id"], "interrupt", wait=False),
        runs.thread_events(rt, ALICE, bob_id, {"run_modes"}, lambda snapshot, asked: {}),
    ]
    for call in hidden:
        with pytest.raises(NotFound):
            await call
    # A server-wide cancel by the caller leaves others' runs alone.
    with pytest.raises(NotFound):
        await runs.cancel(rt, ALICE, None, None, "interrupt", "pending", must_match=True)
    assert (await runs.get(rt, SYSTEM, bob_id, their_run["run_id"]))["status"] == "pending"
    assert (await threads.get(rt, SYSTEM, bob_id))["metadata"]["owner"] == "bob"  # untouched

    # The caller's own thread works as usual.
    run = await runs.create(rt, ALICE, mine["thread_id"], echo, {"input": {"messages": []}})
    assert [r["run_id"] for r in await runs.list_runs(rt, ALICE, mine["thread_id"], status=None, limit=10, offset=0)] == [run["run_id"]]
    await threads.delete(rt, ALICE, mine["thread_id"])
    with pytest.raises(NotFound):
        await threads.get(rt, SYSTEM, mine["thread_id"])


async def test_our_json_decoding_does_not_change_other_psycopg_users(rt, postgres_server):
    import psycopg

    big = "123456789012345678901234567890"  # psycopg's default keeps it exact; ours (orjson) makes it a float
    # The runtime's pool decodes JSON with ours; a plain connection in the same process keeps psycopg's default.
    with psycopg.connect(postgres_server) as conn:
        assert conn.execute(f"SELECT '{big}'::jsonb").fetchone()[0] == int(big)
    async with rt.pool.connection() as conn:
        value = (await (await conn.execute(f"SELECT '{big}'::jsonb AS v")).fetchone())["v"]
        assert isinstance(value, float)
