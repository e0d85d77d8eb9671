"""Custom auth with the two-tenant example (examples/auth.py), through the official SDK: who calls is known,
each tenant sees only its own, and what it does not own is a 404 as if it did not exist."""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client

from conftest import ServerProcess, TESTS, running
from run_helpers import HI, collect, wait_for

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
    yield from running(ServerProcess(config, env={"DATABASE_URI": database_uri}))


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


async def test_a_tenant_cannot_see_or_change_anothers_crons(alice, bob, auth_server):
    thread = await alice.threads.create()
    cron = await alice.crons.create_for_thread(thread["thread_id"], "echo", schedule="0 0 1 1 *", input=HI)
    await assert_not_found(bob.crons.create_for_thread(thread["thread_id"], "echo", schedule="0 0 1 1 *", input=HI))
    await assert_not_found(bob.crons.update(cron["cron_id"], schedule="0 0 2 1 *"))
    await assert_not_found(bob.crons.delete(cron["cron_id"]))
    with httpx.Client(base_url=auth_server.url, headers=BOB) as http:
        assert http.get(f"/runs/crons/{cron['cron_id']}").status_code == 404
    assert cron["cron_id"] not in [c["cron_id"] for c in await bob.crons.search(limit=1000)]
    assert await bob.crons.count(thread_id=thread["thread_id"]) == 0
    assert [c["cron_id"] for c in await alice.crons.search(thread_id=thread["thread_id"])] == [cron["cron_id"]]
    await alice.crons.delete(cron["cron_id"])


async def test_store_items_live_under_each_tenants_own_namespace(alice, bob):
    await alice.store.put_item(["notes"], "plan", {"text": "alice's"})
    await bob.store.put_item(["notes"], "plan", {"text": "bob's"})
    assert (await alice.store.get_item(["notes"], "plan"))["value"] == {"text": "alice's"}
    assert (await bob.store.get_item(["notes"], "plan"))["value"] == {"text": "bob's"}
    # under the handler's scoping, a tenant cannot name another's namespace
    assert await bob.store.get_item(["alice", "notes"], "plan") is None
    found = (await bob.store.search_items(["notes"]))["items"]
    assert [(i["namespace"], i["value"]) for i in found] == [(["bob", "notes"], {"text": "bob's"})]
    assert all(ns[0] == "bob" for ns in (await bob.store.list_namespaces())["namespaces"])
    await bob.store.delete_item(["notes"], "plan")
    assert (await alice.store.get_item(["notes"], "plan"))["value"] == {"text": "alice's"}  # bob deleted only his


RULES = '''
from langgraph_sdk import Auth
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

auth = Auth()


@auth.authenticate
async def authenticate(headers: dict, path: str, method: str, path_params: dict, body: bytes):
    token = headers.get(b"x-token", b"").decode()
    if not token:
        raise Auth.exceptions.HTTPException(status_code=401, detail="no token", headers={"WWW-Authenticate": "Token"})
    return {"identity": token, "seen": [method, path, path_params, len(body)]}


@auth.on.assistants.delete
async def never_delete(ctx, value):
    return False


@auth.on.threads.update
async def teapot(ctx, value):
    raise Auth.exceptions.HTTPException(status_code=418, detail="updates are brewed elsewhere")


async def whoami(request):
    return JSONResponse({"user": getattr(request.user, "identity", None) if "user" in request.scope else None})


app = Starlette(routes=[Route("/whoami", whoami), Route("/open-custom", whoami)])
'''


def rules_server(tmp_path, database_uri, **extra) -> ServerProcess:
    (tmp_path / "rules.py").write_text(RULES)
    config = json.loads(auth_config(tmp_path, {"path": "./rules.py:auth", **extra.pop("auth", {})}).read_text())
    (tmp_path / "langgraph.json").write_text(json.dumps({**config, **extra}))
    return ServerProcess(tmp_path / "langgraph.json", env={"DATABASE_URI": database_uri}).wait_ready()


def test_handlers_refuse_with_403_or_their_own_status_and_authenticate_gets_the_request(tmp_path, database_uri):
    server = rules_server(tmp_path, database_uri, http={"app": "./rules.py:app", "enable_custom_route_auth": False})
    try:
        with httpx.Client(base_url=server.url, headers={"x-token": "zed"}) as http:
            r = httpx.post(f"{server.url}/threads", json={})
            assert (r.status_code, r.json(), r.headers["www-authenticate"]) == (401, {"detail": "no token"}, "Token")
            assistant = http.post("/assistants", json={"graph_id": "echo"}).json()
            r = http.delete(f"/assistants/{assistant['assistant_id']}")
            assert (r.status_code, r.json()) == (403, {"detail": "Forbidden"})
            thread = http.post("/threads", json={"metadata": {"a": 1}}).json()
            r = http.patch(f"/threads/{thread['thread_id']}", json={"metadata": {"a": 2}})
            assert (r.status_code, r.json()) == (418, {"detail": "updates are brewed elsewhere"})
            # the run's graph sees what authenticate returned: the request's parts, its body read and replayed
            seen = http.post(f"/threads/{thread['thread_id']}/runs/wait", json={"assistant_id": "seen_config", "input": {}}).json()
            assert seen["seen"]["langgraph_auth_user_id"] == "zed"
            state = http.get(f"/threads/{thread['thread_id']}/state").json()  # a GET: no body
            assert state["values"]["seen"]["user_id"] == "zed"
        # custom routes are open unless enable_custom_route_auth
        assert httpx.get(f"{server.url}/whoami").status_code == 200
    finally:
        server.stop()


def test_custom_routes_are_protected_with_enable_custom_route_auth(tmp_path, database_uri):
    server = rules_server(tmp_path, database_uri, http={"app": "./rules.py:app", "enable_custom_route_auth": True})
    try:
        assert httpx.get(f"{server.url}/whoami").status_code == 401
        assert httpx.get(f"{server.url}/whoami", headers={"x-token": "zed"}).status_code == 200
        assert httpx.get(f"{server.url}/ok").status_code == 200
    finally:
        server.stop()


def test_studio_requests_with_the_deployments_key_are_a_studio_user_unless_disabled(tmp_path, database_uri, monkeypatch):
    studio = {"x-auth-scheme": "langsmith", "x-api-key": "lsv2-test-key"}
    monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2-test-key")
    server = rules_server(tmp_path, database_uri)
    try:
        assert httpx.post(f"{server.url}/threads/search", json={}, headers=studio).status_code == 200
        wrong = {**studio, "x-api-key": "guess"}
        assert httpx.post(f"{server.url}/threads/search", json={}, headers=wrong).status_code == 401
    finally:
        server.stop()
    server = rules_server(tmp_path, database_uri, auth={"disable_studio_auth": True})
    try:
        assert httpx.post(f"{server.url}/threads/search", json={}, headers=studio).status_code == 401
    finally:
        server.stop()


async def test_a_stateless_crons_kept_threads_are_its_creators(alice, bob):
    before = {t["thread_id"] for t in await alice.threads.search(limit=1000)}
    cron = await alice.crons.create("echo", schedule="* * * * * *", input=HI, on_run_completed="keep")
    try:
        async def fired():
            return [t for t in await alice.threads.search(limit=1000) if t["thread_id"] not in before]

        made = await wait_for(fired, timeout=15)
    finally:
        await alice.crons.delete(cron["cron_id"])
    await assert_not_found(bob.threads.get(made[0]["thread_id"]))
