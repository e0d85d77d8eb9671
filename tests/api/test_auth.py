"""Custom auth with the two-tenant example (examples/auth.py), through the official SDK: who calls is known,
each tenant sees only its own, and what it does not own is a 404 as if it did not exist."""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client

from conftest import TESTS, ServerProcess
from run_helpers import HI, collect

EXAMPLES = TESTS.parent / "examples"
ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}


def auth_config(folder: Path, auth: dict) -> Path:
    config = json.loads((TESTS / "langgraph.json").read_text())
    graphs = {k: str((TESTS / v.split(":")[0]).resolve()) + ":" + v.split(":")[1] for k, v in config["graphs"].items()}
    path = folder / "langgraph.json"
    path.write_text(json.dumps({"dependencies": [str(EXAMPLES)], "graphs": graphs, "auth": auth}))
    return path


async def assert_not_found(call) -> None:
    """The call fails as for a resource that does not exist."""
    with pytest.raises(httpx.HTTPStatusError) as failed:
        await call
    assert failed.value.response.status_code == 404


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory, database_uri):
    folder = tmp_path_factory.mktemp("auth")
    config = auth_config(folder, {
        "path": f"{EXAMPLES / 'auth.py'}:auth",
        "openapi": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "security": [{"bearer": []}]},
    })
    server = ServerProcess(config, env={"DATABASE_URI": database_uri})
    try:
        yield server.wait_ready()
    finally:
        server.stop()


@pytest.fixture
def alice(auth_server):
    return get_client(url=auth_server.url, headers=ALICE)


@pytest.fixture
def bob(auth_server):
    return get_client(url=auth_server.url, headers=BOB)


def test_unauthenticated_calls_get_401_and_the_meta_routes_stay_open(auth_server):
    with httpx.Client(base_url=auth_server.url) as http:
        for method, path in (("POST", "/threads/search"), ("POST", "/threads"), ("GET", "/assistants/echo")):
            r = http.request(method, path, json={})
            assert r.status_code == 401, (path, r.text)
            assert r.json() == {"detail": "Invalid or missing bearer token"}
        assert http.post("/threads", json={}, headers={"Authorization": "Bearer nobody"}).status_code == 401
        for path in ("/ok", "/info", "/metrics", "/openapi.json", "/docs"):
            assert http.get(path).status_code == 200, path
        # auth.openapi shows in the API's description
        document = http.get("/openapi.json").json()
        assert document["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
        assert document["security"] == [{"bearer": []}]


async def test_a_tenant_cannot_reach_anothers_thread_in_any_way(alice, bob):
    thread = await alice.threads.create(metadata={"topic": "a"})
    assert thread["metadata"]["owner"] == "alice"  # stamped by the handler
    thread_id = thread["thread_id"]
    run = await alice.runs.create(thread_id, "echo", input=HI)
    await alice.runs.join(thread_id, run["run_id"])

    hidden = [
        bob.threads.get(thread_id),
        bob.threads.update(thread_id, metadata={"owner": "bob"}),
        bob.threads.copy(thread_id),
        bob.threads.get_state(thread_id),
        bob.threads.update_state(thread_id, {"messages": []}),
        bob.threads.get_history(thread_id),
        bob.threads.delete(thread_id),
        bob.runs.create(thread_id, "echo", input=HI),
        bob.runs.wait(thread_id, "echo", input=HI),
        bob.runs.list(thread_id),
        bob.runs.get(thread_id, run["run_id"]),
        bob.runs.join(thread_id, run["run_id"]),
        bob.runs.cancel(thread_id, run["run_id"]),
        bob.runs.delete(thread_id, run["run_id"]),
    ]
    for call in hidden:
        await assert_not_found(call)
    await assert_not_found(collect(bob.runs.stream(thread_id, "echo", input=HI)))
    await assert_not_found(collect(bob.runs.join_stream(thread_id, run["run_id"])))

    assert thread_id not in [t["thread_id"] for t in await bob.threads.search(limit=1000)]
    assert await bob.threads.count(metadata={"topic": "a"}) == 0
    assert await alice.threads.count(metadata={"topic": "a"}) >= 1
    # nothing of it changed
    mine = await alice.threads.get(thread_id)
    assert mine["metadata"]["topic"] == "a" and mine["metadata"]["owner"] == "alice"
    assert [r["run_id"] for r in await alice.runs.list(thread_id)] == [run["run_id"]]


async def test_a_tenant_cannot_see_anothers_assistants(alice, bob):
    mine = await alice.assistants.create("echo", name="alice's echo")
    assert mine["metadata"]["owner"] == "alice"
    for call in (
        bob.assistants.get(mine["assistant_id"]),
        bob.assistants.update(mine["assistant_id"], name="taken"),
        bob.assistants.delete(mine["assistant_id"]),
        bob.assistants.get_versions(mine["assistant_id"]),
        bob.assistants.get_schemas(mine["assistant_id"]),
    ):
        await assert_not_found(call)
    assert mine["assistant_id"] not in [a["assistant_id"] for a in await bob.assistants.search(limit=1000)]
    assert mine["assistant_id"] in [a["assistant_id"] for a in await alice.assistants.search(limit=1000)]
    assert (await alice.assistants.get(mine["assistant_id"]))["name"] == "alice's echo"


async def test_runs_made_threads_belong_to_their_creator_and_the_graph_sees_the_user(alice, bob):
    """A thread a run creates (if_not_exists) is its creator's; the graph gets the user in its config."""
    import uuid

    thread_id = str(uuid.uuid4())
    result = await alice.runs.wait(thread_id, "seen_config", input={}, if_not_exists="create")
    seen = result["seen"]
    assert seen["langgraph_auth_user_id"] == "alice"
    assert seen["user_id"] == "alice"
    assert (await alice.threads.get(thread_id))["metadata"]["owner"] == "alice"
    await assert_not_found(bob.threads.get(thread_id))


async def test_the_graph_gets_the_whole_user_and_its_permissions(alice):
    thread = await alice.threads.create()
    result = await alice.runs.wait(thread["thread_id"], "auth_user", input={})
    assert result["user"] == {
        "identity": "alice", "display_name": "Alice", "permissions": ["threads:write"], "is_authenticated": True,
    }
    assert result["attribute_identity"] == "alice"  # user.identity works as well as user["identity"]
    assert result["permissions"] == ["threads:write"]
    assert result["server_info_user"] == "alice"  # runtime.server_info.user
