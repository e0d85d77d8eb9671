"""Cron jobs through the official SDK (`client.crons`): shapes, updates, bad input, deletes that take crons
with them; and firing with two scheduler processes on one database: one run per tick, stateless threads
deleted or kept, end_time and disabled crons."""
from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError

from run_helpers import wait_for

ECHO = "echo"
HI = {"messages": [{"role": "user", "content": "tick"}]}
CRON_FIELDS = {
    "cron_id", "assistant_id", "thread_id", "user_id", "end_time", "schedule", "timezone", "payload",
    "next_run_date", "metadata", "on_run_completed", "enabled", "created_at", "updated_at",
}
NOBODY = "00000000-0000-0000-0000-000000000001"


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


async def test_a_thread_cron_and_a_stateless_cron_have_the_official_shape(client):
    thread = await client.threads.create()
    on_thread = await client.crons.create_for_thread(
        thread["thread_id"], ECHO, schedule="0 9 * * *", input=HI, metadata={"team": "a"}, timezone="Europe/Paris",
    )
    assert set(on_thread) == CRON_FIELDS
    assert on_thread["thread_id"] == thread["thread_id"] and on_thread["on_run_completed"] is None
    assert on_thread["enabled"] is True and on_thread["user_id"] == "" and on_thread["metadata"] == {"team": "a"}
    assert on_thread["payload"]["input"] == HI
    assert on_thread["payload"]["config"]["configurable"]["cron_id"] == on_thread["cron_id"]
    next_run = _when(on_thread["next_run_date"])
    assert next_run > datetime.now(UTC)
    assert next_run.astimezone(ZoneInfo("Europe/Paris")).hour == 9  # 9:00 in Paris

    stateless = await client.crons.create(ECHO, schedule="*/5 * * * *", end_time=datetime.now(UTC) + timedelta(days=1))
    assert stateless["thread_id"] is None and stateless["on_run_completed"] == "delete"
    assert stateless["assistant_id"] == on_thread["assistant_id"]  # the graph's default assistant
    assert _when(stateless["end_time"]) > datetime.now(UTC) and _when(stateless["next_run_date"]) > datetime.now(UTC)
    kept = await client.crons.create(ECHO, schedule="*/5 * * * *", on_run_completed="keep")
    assert kept["on_run_completed"] == "keep"

    by_thread = await client.crons.search(thread_id=thread["thread_id"])
    assert [c["cron_id"] for c in by_thread] == [on_thread["cron_id"]]
    assert await client.crons.count(thread_id=thread["thread_id"]) == 1
    assert await client.crons.count(metadata={"team": "a"}) >= 1
    selected = await client.crons.search(thread_id=thread["thread_id"], select=["cron_id", "next_run_date"])
    assert selected == [{"cron_id": on_thread["cron_id"], "next_run_date": on_thread["next_run_date"]}]
    mine = {stateless["cron_id"], kept["cron_id"]}
    ordered = [
        c["cron_id"] for c in await client.crons.search(assistant_id=ECHO, sort_by="created_at", sort_order="asc", limit=1000)
        if c["cron_id"] in mine
    ]
    assert ordered == [stateless["cron_id"], kept["cron_id"]]

    async with httpx.AsyncClient(base_url=client.http.client.base_url) as http:
        got = await http.get(f"/runs/crons/{kept['cron_id']}")
        assert got.status_code == 200 and got.json() == kept
        page = await http.post("/runs/crons/search", json={"assistant_id": ECHO, "limit": 1})
        assert len(page.json()) == 1 and page.headers["X-Pagination-Next"] == "1"
    for cron in (on_thread, stateless, kept):
        await client.crons.delete(cron["cron_id"])
    assert await client.crons.count(thread_id=thread["thread_id"]) == 0


async def test_an_update_changes_the_schedule_payload_and_metadata_and_can_clear_end_time(client):
    thread = await client.threads.create()
    cron = await client.crons.create_for_thread(
        thread["thread_id"], ECHO, schedule="0 9 * * *", input=HI, metadata={"a": 1},
        end_time=datetime.now(UTC) + timedelta(days=3),
    )
    updated = await client.crons.update(
        cron["cron_id"], schedule="30 6 * * *", enabled=False, metadata={"b": 2}, input={"messages": []},
    )
    assert updated["schedule"] == "30 6 * * *" and updated["enabled"] is False
    assert updated["metadata"] == {"a": 1, "b": 2}
    assert updated["payload"]["input"] == {"messages": []}
    assert updated["payload"]["config"]["configurable"]["cron_id"] == cron["cron_id"]
    next_run = _when(updated["next_run_date"])
    assert (next_run.hour, next_run.minute) == (6, 30) and next_run > datetime.now(UTC)
    assert updated["end_time"] == cron["end_time"]  # not given: unchanged
    cleared = await client.crons.update(cron["cron_id"], end_time=None)
    assert cleared["end_time"] is None and cleared["schedule"] == "30 6 * * *"


async def test_bad_cron_requests_are_refused_with_the_right_status(client, http):
    thread = await client.threads.create()
    cron = await client.crons.create(ECHO, schedule="0 0 * * *")
    cases = [
        ("POST", "/runs/crons", {"assistant_id": ECHO, "schedule": "not a schedule"}, 422),
        ("POST", "/runs/crons", {"assistant_id": ECHO, "schedule": "61 * * * *"}, 422),
        ("POST", "/runs/crons", {"assistant_id": ECHO, "schedule": "0 0 30 2 *"}, 422),  # February 30th
        ("POST", "/runs/crons", {"assistant_id": ECHO}, 422),
        ("POST", "/runs/crons", {"assistant_id": NOBODY, "schedule": "* * * * *"}, 404),
        ("POST", "/runs/crons", {"assistant_id": "no-such-graph", "schedule": "* * * * *"}, 404),  # as the official
        ("POST", "/runs/crons", {"assistant_id": ECHO, "schedule": "* * * * *", "timezone": "Mars/Base"}, 422),
        ("POST", "/runs/crons", {"assistant_id": ECHO, "schedule": "* * * * *", "on_run_completed": "never"}, 422),
        ("POST", "/runs/crons", {"assistant_id": ECHO, "schedule": "* * * * *", "end_time": "soon"}, 422),
        ("POST", "/runs/crons", {"assistant_id": ECHO, "schedule": "* * * * *", "interrupt_before": ["nope"]}, 422),
        ("POST", "/runs/crons", {"assistant_id": ECHO, "schedule": "* * * * *", "webhook": "ftp://x"}, 422),
        ("POST", "/runs/crons", {"assistant_id": ECHO, "schedule": "* * * * *", "webhook": "http://127.0.0.1/x"}, 422),
        ("POST", f"/threads/{NOBODY}/runs/crons", {"assistant_id": ECHO, "schedule": "* * * * *"}, 404),
        ("POST", "/threads/not-a-uuid/runs/crons", {"assistant_id": ECHO, "schedule": "* * * * *"}, 422),
        ("POST", f"/threads/{thread['thread_id']}/runs/crons", {"assistant_id": NOBODY, "schedule": "* * * * *"}, 404),
        ("PATCH", f"/runs/crons/{cron['cron_id']}", {}, 400),
        ("PATCH", f"/runs/crons/{cron['cron_id']}", {"schedule": "every day"}, 422),
        ("PATCH", f"/runs/crons/{NOBODY}", {"enabled": False}, 404),
        ("PATCH", "/runs/crons/not-a-uuid", {"enabled": False}, 422),
        ("DELETE", f"/runs/crons/{NOBODY}", None, 404),
        ("DELETE", "/runs/crons/not-a-uuid", None, 422),
        ("GET", f"/runs/crons/{NOBODY}", None, 404),
        ("POST", "/runs/crons/search", {"sort_by": "schedule"}, 422),
        ("POST", "/runs/crons/search", {"select": ["secret"]}, 422),
        ("POST", "/runs/crons/search", {"thread_id": "not-a-uuid"}, 422),
        ("POST", "/runs/crons/count", {"thread_id": "not-a-uuid"}, 422),
    ]
    for method, path, body, status in cases:
        response = http.request(method, path, json=body)
        assert response.status_code == status, (method, path, body, response.text)
        assert "detail" in response.json()
    await client.crons.delete(cron["cron_id"])


async def test_deleting_a_thread_or_an_assistant_deletes_its_crons(client):
    thread = await client.threads.create()
    on_thread = await client.crons.create_for_thread(thread["thread_id"], ECHO, schedule="0 0 * * *")
    await client.threads.delete(thread["thread_id"])
    with pytest.raises(NotFoundError):
        await client.crons.update(on_thread["cron_id"], enabled=False)

    assistant = await client.assistants.create(ECHO)
    other = await client.threads.create()
    crons = [
        await client.crons.create(assistant["assistant_id"], schedule="0 0 * * *"),
        await client.crons.create_for_thread(other["thread_id"], assistant["assistant_id"], schedule="0 0 * * *"),
    ]
    assert await client.crons.count(assistant_id=assistant["assistant_id"]) == 2
    await client.assistants.delete(assistant["assistant_id"])
    assert await client.crons.count(assistant_id=assistant["assistant_id"]) == 0
    for cron in crons:
        with pytest.raises(NotFoundError):
            await client.crons.delete(cron["cron_id"])


async def test_info_says_crons_are_served(http):
    assert http.get("/info").json()["flags"]["crons"] is True


# ---- firing, with two scheduler processes ---------------------------------------------------------

async def _runs(client, thread_id: str) -> list[dict]:
    return await client.runs.list(thread_id, limit=1000)


def _fired(workers, cron_id: str) -> int:
    """Firings of a cron, as the schedulers of both workers logged them."""
    return sum(w.output().count(f"cron {cron_id}: queued run") for w in workers)


async def test_two_schedulers_fire_a_per_second_cron_once_per_tick(cluster):
    """Two worker processes schedule at once: each tick of `* * * * * *` (seconds) is one run — none twice,
    none missed. Stateless crons delete (or keep) their threads; end_time and disabled crons stop firing."""
    workers = cluster.add_workers(2)
    client = cluster.client
    every_second = "* * * * * *"
    thread, late, off = [await client.threads.create() for _ in range(3)]
    per_thread = await client.crons.create_for_thread(thread["thread_id"], ECHO, schedule=every_second, input=HI)
    ending = await client.crons.create_for_thread(
        late["thread_id"], ECHO, schedule=every_second, input=HI, end_time=datetime.now(UTC) + timedelta(seconds=1.5),
    )
    disabled = await client.crons.create_for_thread(off["thread_id"], ECHO, schedule=every_second, enabled=False)
    deleting, keeping = [await client.assistants.create(ECHO) for _ in range(2)]
    stateless_delete = await client.crons.create(deleting["assistant_id"], schedule=every_second, input=HI)
    stateless_keep = await client.crons.create(
        keeping["assistant_id"], schedule=every_second, input=HI, on_run_completed="keep",
    )

    await asyncio.sleep(4.5)
    for cron in (per_thread, stateless_delete, stateless_keep):
        await client.crons.update(cron["cron_id"], enabled=False)
    ticks = await wait_for(lambda: _settled(client, thread["thread_id"]), timeout=20)

    seconds = Counter(_when(run["created_at"]).replace(microsecond=0) for run in ticks)
    assert max(seconds.values()) == 1, f"a tick fired twice: {seconds}"
    first, last = min(seconds), max(seconds)
    assert len(seconds) == (last - first).seconds + 1, f"a tick was missed: {sorted(seconds)}"
    assert len(ticks) >= 3 and len(ticks) == _fired(workers, per_thread["cron_id"])
    assert all(run["status"] == "success" for run in ticks)
    assert all(run["kwargs"]["config"]["configurable"]["cron_id"] == per_thread["cron_id"] for run in ticks)

    assert 1 <= len(await _runs(client, late["thread_id"])) <= 2  # end_time 1.5 s after its creation
    assert await _runs(client, off["thread_id"]) == []

    assert _fired(workers, stateless_delete["cron_id"]) >= 3
    assert await wait_for(
        lambda: _no_threads_of(client, deleting["assistant_id"]), timeout=20
    ), "the threads of a stateless cron with on_run_completed=delete are deleted after their run"
    kept = await client.threads.search(metadata={"assistant_id": keeping["assistant_id"]}, limit=100)
    assert len(kept) == _fired(workers, stateless_keep["cron_id"]) >= 3


async def _settled(client, thread_id: str) -> list[dict] | None:
    runs = await _runs(client, thread_id)
    return runs if runs and all(r["status"] not in ("pending", "running") for r in runs) else None


async def _no_threads_of(client, assistant_id: str) -> bool:
    return not await client.threads.search(metadata={"assistant_id": assistant_id}, limit=1)


# ---- with custom auth (examples/auth.py: each tenant sees only what it owns) -------------------------

@pytest.fixture
def auth_server(tmp_path, database_uri):
    from api.test_auth import EXAMPLES, auth_config
    from conftest import ServerProcess, running

    yield from running(ServerProcess(auth_config(tmp_path, {"path": f"{EXAMPLES / 'auth.py'}:auth"}), env={"DATABASE_URI": database_uri}))


async def test_a_tenants_crons_and_the_threads_they_make_are_the_tenants_own(auth_server):
    from langgraph_sdk import get_client

    from api.test_auth import ALICE, BOB

    alice, bob = get_client(url=auth_server.url, headers=ALICE), get_client(url=auth_server.url, headers=BOB)
    assistant = await alice.assistants.create(ECHO)
    cron = await alice.crons.create(
        assistant["assistant_id"], schedule="* * * * * *", input=HI, on_run_completed="keep"
    )
    assert cron["user_id"] == "alice" and cron["metadata"]["owner"] == "alice"
    try:
        kept = await wait_for(
            lambda: alice.threads.search(metadata={"assistant_id": assistant["assistant_id"]}), timeout=15
        )
        assert all(t["metadata"]["owner"] == "alice" for t in kept)  # fired by the server, on alice's behalf
        assert await bob.crons.search(assistant_id=assistant["assistant_id"]) == []
        assert await bob.crons.count(assistant_id=assistant["assistant_id"]) == 0
        with pytest.raises(NotFoundError):
            await bob.crons.delete(cron["cron_id"])
    finally:
        await alice.crons.delete(cron["cron_id"])
