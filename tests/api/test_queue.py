"""GET /queue (ours, for the console): the pending and running runs across threads, their ages and the worker
holding each running one; under custom auth only the caller's own."""
from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from conftest import ServerProcess, TESTS, running
from run_helpers import SLOW, slow

EXAMPLES = TESTS.parent / "examples"
ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}


def queued(http: httpx.Client, headers: dict | None = None) -> dict:
    """The queue's counts, and its runs by id."""
    body = http.get("/queue", params={"limit": 1000}, headers=headers).raise_for_status().json()
    return {**body, "runs": {r["run_id"]: r for r in body["runs"]}}


def start(http: httpx.Client, assistant: str, headers: dict | None = None, **run) -> tuple[str, str]:
    thread = http.post("/threads", json={}, headers=headers).raise_for_status().json()["thread_id"]
    created = http.post(f"/threads/{thread}/runs", json={"assistant_id": assistant, **run}, headers=headers)
    return thread, created.raise_for_status().json()["run_id"]


def held(http: httpx.Client, run_id: str) -> dict:
    """The run's queue entry once a worker holds it."""
    for _ in range(200):
        entry = queued(http)["runs"].get(run_id)
        if entry and entry["status"] == "running":
            return entry
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never ran")


def test_the_queue_lists_pending_and_running_runs_with_their_ages_and_worker(server, http):
    busy, slow_run = start(http, SLOW, input={}, config=slow(1))
    later, delayed = start(http, "echo", input={"messages": []}, after_seconds=60)
    try:
        entry = held(http, slow_run)
        host, pid, suffix = entry["worker"].rsplit(":", 2)
        assert host == socket.gethostname() and int(pid) == server.proc.pid and len(suffix) == 8
        assert entry["thread_id"] == busy and entry["graph_id"] == SLOW and entry["attempt"] == 1
        assert entry["started_at"] and entry["running_seconds"] >= 0 and entry["age_seconds"] >= entry["running_seconds"]
        assert entry["due_in_seconds"] is None
        queue = queued(http)
        waiting = queue["runs"][delayed]
        assert waiting["status"] == "pending" and waiting["thread_id"] == later and waiting["worker"] is None
        assert waiting["attempt"] == 0 and waiting["running_seconds"] is None and 50 < waiting["due_in_seconds"] <= 60
        assert queue["pending"] >= 1 and queue["running"] >= 1
        order = list(queue["runs"])
        assert order.index(slow_run) < order.index(delayed)  # running ones first
        # a page of it: the counts are still of the whole queue
        first = http.get("/queue", params={"limit": 1}).json()
        assert len(first["runs"]) == 1 and first["pending"] + first["running"] >= 2
        # the official run shape is untouched
        run = http.get(f"/threads/{busy}/runs/{slow_run}").json()
        assert "worker" not in run and "attempt" not in run
    finally:
        http.post(f"/threads/{busy}/runs/{slow_run}/cancel")
        http.post(f"/threads/{later}/runs/{delayed}/cancel")
    assert delayed not in queued(http)["runs"]  # cancelled while pending: gone from the queue at once


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "many"}, {"offset": 2**63}])
def test_bad_paging_is_422(http, params):
    assert http.get("/queue", params=params).status_code == 422


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory, database_uri):
    folder = tmp_path_factory.mktemp("queue-auth")
    config = folder / "langgraph.json"
    config.write_text(json.dumps({
        "dependencies": [str(EXAMPLES)],
        "graphs": {"echo": str(EXAMPLES / "graphs/echo.py") + ":graph"},
        "auth": {"path": str(EXAMPLES / "auth.py") + ":auth"},
    }))
    yield from running(ServerProcess(config, env={"DATABASE_URI": database_uri}))


def test_under_custom_auth_each_caller_sees_only_the_runs_of_its_own_threads(auth_server):
    with httpx.Client(base_url=auth_server.url) as http:
        assert http.get("/queue").status_code == 401
        mine = start(http, "echo", ALICE, input={"messages": []}, after_seconds=60)
        theirs = start(http, "echo", BOB, input={"messages": []}, after_seconds=60)
        try:
            alice, bob = queued(http, ALICE), queued(http, BOB)
            assert mine[1] in alice["runs"] and theirs[1] not in alice["runs"]
            assert theirs[1] in bob["runs"] and mine[1] not in bob["runs"]
            assert alice["pending"] + alice["running"] == len(alice["runs"])  # the counts are filtered too
        finally:
            http.post(f"/threads/{mine[0]}/runs/{mine[1]}/cancel", headers=ALICE)
            http.post(f"/threads/{theirs[0]}/runs/{theirs[1]}/cancel", headers=BOB)
