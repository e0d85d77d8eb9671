"""The long-term store through the official SDK (`client.store`): items, filters, namespaces, the same
store graphs use (both ways, single host and split mode), semantic search, TTLs, bad input.

Semantic search needs pgvector, which the local PostgreSQL lacks: those tests run on a server of this
module with its own langgraph.json (store.index, store.ttl, checkpointer.ttl) on an embedded PostgreSQL."""
from __future__ import annotations

import asyncio
import json
import shutil
import uuid

import httpx
import psycopg
import pytest
from langgraph_sdk import get_client

from conftest import ServerProcess, TESTS, running, start_embedded_postgres, stop_embedded_postgres


def ns(*labels: str) -> list[str]:
    """A namespace under a root of this test alone (the shared server keeps every test's items)."""
    return [f"t{uuid.uuid4().hex[:10]}", *labels]


async def wait_until(check, timeout: float = 15.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await check()):
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)
    return result


# ---- items ---------------------------------------------------------------------------------------------

async def test_put_get_delete_round_trip(client, http):
    space = ns("docs")
    await client.store.put_item(space, key="a", value={"title": "A", "tags": ["x"]})
    item = await client.store.get_item(space, key="a")
    assert item["namespace"] == space and item["key"] == "a" and item["value"] == {"title": "A", "tags": ["x"]}
    assert item["created_at"] and item["updated_at"]

    await client.store.put_item(space, key="a", value={"title": "A2"})
    again = await client.store.get_item(space, key="a")
    assert again["value"] == {"title": "A2"} and again["created_at"] == item["created_at"]

    r = http.put("/store/items", json={"namespace": space, "key": "b", "value": {}})
    assert r.status_code == 204 and r.content == b""
    await client.store.delete_item(space, key="a")
    assert await client.store.get_item(space, key="a") is None  # the official server answers 200 null
    r = http.request("DELETE", "/store/items", json={"namespace": space, "key": "never"})
    assert r.status_code == 204


async def test_search_filters_paginate_and_order_by_last_update(client):
    space = ns("scores")
    for i, n in enumerate([3, 10, 7, 9]):
        await client.store.put_item(space, key=f"k{i}", value={"n": n, "kind": "even" if n % 2 == 0 else "odd"})

    async def keys(**kw) -> list[str]:
        return sorted(i["key"] for i in (await client.store.search_items(space, **kw))["items"])

    assert await keys(filter={"kind": "odd"}) == ["k0", "k2", "k3"]
    assert await keys(filter={"n": {"$eq": 10}}) == ["k1"]
    assert await keys(filter={"n": {"$ne": 10}}) == ["k0", "k2", "k3"]
    assert await keys(filter={"n": {"$gt": 7}}) == ["k1", "k3"]  # numbers compare as numbers: 10 > 7
    assert await keys(filter={"n": {"$gte": 7}}) == ["k1", "k2", "k3"]
    assert await keys(filter={"n": {"$lt": 9}}) == ["k0", "k2"]
    assert await keys(filter={"n": {"$lte": 9, "$gt": 3}}) == ["k2", "k3"]
    assert await keys(filter={"kind": "odd", "n": {"$gt": 5}}) == ["k2", "k3"]

    page = (await client.store.search_items(space, limit=2))["items"]
    rest = (await client.store.search_items(space, limit=2, offset=2))["items"]
    assert [i["key"] for i in page + rest] == ["k3", "k2", "k1", "k0"]  # the latest updated first
    assert all(i["score"] is None for i in page)  # no query: no score


async def test_search_by_prefix_reaches_nested_namespaces_only(client):
    root = ns()
    await client.store.put_item([*root, "a"], key="1", value={})
    await client.store.put_item([*root, "a", "deep"], key="2", value={})
    await client.store.put_item([*root, "ab"], key="3", value={})  # not under [root, "a"]
    found = (await client.store.search_items([*root, "a"]))["items"]
    assert sorted((tuple(i["namespace"]), i["key"]) for i in found) == [
        ((*root, "a"), "1"), ((*root, "a", "deep"), "2"),
    ]


async def test_list_namespaces_with_prefix_suffix_and_depth(client):
    root = ns()
    for path in (["users", "u1", "prefs"], ["users", "u2", "prefs"], ["users", "u2", "notes"], ["docs"]):
        await client.store.put_item([*root, *path], key="k", value={})

    async def listed(**kw):
        return (await client.store.list_namespaces(**kw))["namespaces"]

    assert await listed(prefix=root) == [[*root, "docs"], [*root, "users", "u1", "prefs"],
                                         [*root, "users", "u2", "notes"], [*root, "users", "u2", "prefs"]]
    assert await listed(prefix=[*root, "users"], suffix=["prefs"]) == [
        [*root, "users", "u1", "prefs"], [*root, "users", "u2", "prefs"],
    ]
    assert await listed(prefix=root, max_depth=3) == [[*root, "docs"], [*root, "users", "u1"], [*root, "users", "u2"]]
    assert await listed(prefix=root, max_depth=3, limit=1, offset=1) == [[*root, "users", "u1"]]


# ---- the store graphs get ---------------------------------------------------------------------------------

async def _graph_round_trip(client) -> None:
    space = ns("shared")
    await client.store.put_item(space, key="from_api", value={"by": "api"})
    out = await client.runs.wait(
        None, "store_graph", input={"namespace": space, "get": "from_api", "put": {"from_graph": {"by": "graph"}}}
    )
    assert out["got"] == {"by": "api"}  # the graph reads what the API wrote
    assert (await client.store.get_item(space, key="from_graph"))["value"] == {"by": "graph"}  # and back


async def test_graph_and_api_share_the_store(client):
    await _graph_round_trip(client)


def test_graph_and_api_share_the_store_in_split_mode(cluster):
    cluster.add_worker()
    asyncio.run(_graph_round_trip(cluster.client))


# ---- bad input: 422 naming the field, never a 500 ----------------------------------------------------------

LONG = "x" * 1500


@pytest.mark.parametrize("method, path, body, field", [
    ("PUT", "/store/items", {"namespace": [], "key": "k", "value": {}}, "namespace"),
    ("PUT", "/store/items", {"namespace": ["a.b"], "key": "k", "value": {}}, "namespace"),
    ("PUT", "/store/items", {"namespace": ["a", ""], "key": "k", "value": {}}, "namespace"),
    ("PUT", "/store/items", {"namespace": ["langgraph"], "key": "k", "value": {}}, "namespace"),
    ("PUT", "/store/items", {"namespace": ["a"], "key": "k", "value": [1]}, "value"),
    ("PUT", "/store/items", {"namespace": ["a"], "key": "k", "value": "text"}, "value"),
    ("PUT", "/store/items", {"namespace": ["a"], "key": "k"}, "value"),
    ("PUT", "/store/items", {"namespace": ["a"], "key": "k", "value": {}, "index": True}, "index"),
    ("PUT", "/store/items", {"namespace": [LONG], "key": "k", "value": {}}, "namespace"),
    ("PUT", "/store/items", {"namespace": ["a"] * 600, "key": "k", "value": {}}, "namespace"),
    ("PUT", "/store/items", {"namespace": ["a"], "key": LONG, "value": {}}, "key"),
    ("PUT", "/store/items", {"namespace": ["a"], "key": "k", "value": {}, "ttl": 1e12}, "ttl"),
    ("PUT", "/store/items", {"namespace": ["a"], "key": "k", "value": {}, "ttl": True}, "ttl"),
    ("PUT", "/store/items", {"namespace": ["a"], "key": "k", "value": {"n": 2**70}}, "value"),
    ("PUT", "/store/items", {"namespace": ["a"], "key": "k", "value": {}, "index": [LONG]}, "index"),
    ("DELETE", "/store/items", {"namespace": [], "key": "k"}, "namespace"),
    ("POST", "/store/items/search", {"namespace_prefix": ["a."]}, "namespace_prefix"),
    ("POST", "/store/items/search", {"limit": -1}, "limit"),
    ("POST", "/store/items/search", {"offset": -5}, "offset"),
    ("POST", "/store/items/search", {"filter": {"n": {"$regex": "x"}}}, "filter.n"),
    ("POST", "/store/items/search", {"filter": []}, "filter"),
    ("POST", "/store/items/search", {"filter": {"n": {"$gt": 2**70}}}, "filter"),
    ("POST", "/store/namespaces", {"prefix": ["a", ""]}, "prefix"),
    ("POST", "/store/namespaces", {"suffix": ["x.y"]}, "suffix"),
    ("POST", "/store/namespaces", {"limit": -1}, "limit"),
    ("POST", "/store/namespaces", {"max_depth": 0}, "max_depth"),
])
def test_bad_input_is_422_naming_the_field(http, method, path, body, field):
    r = http.request(method, path, json=body)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]


@pytest.mark.parametrize("params, field", [
    ({"namespace": "", "key": "k"}, "namespace"),
    ({"namespace": "a..b", "key": "k"}, "namespace"),
    ({"namespace": "a"}, "key"),
    ({"namespace": "a", "key": "k", "refresh_ttl": "maybe"}, "refresh_ttl"),
])
def test_bad_get_is_422_naming_the_field(http, params, field):
    r = http.get("/store/items", params=params)
    assert r.status_code == 422 and field in r.json()["detail"]


def test_values_postgres_cannot_store_are_422(http):
    for body in ({"namespace": ["a"], "key": "nul\u0000key", "value": {}},
                 {"namespace": ["a"], "key": "k", "value": {"text": "nul\u0000char"}}):
        assert http.put("/store/items", json=body).status_code == 422


# ---- semantic search and TTLs: a server of this module, its own config, on an embedded PostgreSQL ----------

STORE_CONFIG = {
    "graphs": {"store_graph": f"{TESTS / 'graphs' / 'store_graph.py'}:graph"},
    "store": {
        "index": {"dims": 64, "embed": "./embed.py:embed", "fields": ["text"]},  # relative to the config
        "ttl": {"default_ttl": 60, "refresh_on_read": True, "sweep_interval_minutes": 0.01},
    },
    "checkpointer": {"ttl": {"strategy": "delete", "default_ttl": 0.02, "sweep_interval_minutes": 0.01}},
}


@pytest.fixture(scope="module")
def store_pg(tmp_path_factory):
    pg = start_embedded_postgres(tmp_path_factory.mktemp("store_pg") / "data")
    try:
        yield pg
    finally:
        stop_embedded_postgres(pg)


def write_config(folder, config: dict):
    shutil.copy(TESTS / "graphs" / "embed.py", folder / "embed.py")
    path = folder / "langgraph.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def store_server(tmp_path_factory, store_pg):
    config = write_config(tmp_path_factory.mktemp("store_config"), STORE_CONFIG)
    # a short lease: housekeeping (the sweeps) runs every lease/6 seconds
    yield from running(ServerProcess(config, env={"DATABASE_URI": store_pg.get_uri(), "AGENT_SERVER_LEASE_SECS": "3"}))


@pytest.fixture
def sclient(store_server):
    return get_client(url=store_server.url)


DOCS = {
    "py": "python programming tutorial for beginners",
    "pasta": "cooking fresh pasta at home",
    "tips": "advanced python tips",
    "garden": "growing tomatoes in the garden",
}


async def test_semantic_search_ranks_by_similarity(sclient):
    space = ns("docs")
    for key, text in DOCS.items():
        await sclient.store.put_item(space, key=key, value={"text": text, "kind": "doc"})
    await sclient.store.put_item(space, key="unindexed", value={"text": "python python python"}, index=False)

    found = (await sclient.store.search_items(space, query="python tutorial", limit=3))["items"]
    assert [i["key"] for i in found[:2]] == ["py", "tips"]
    assert "unindexed" not in [i["key"] for i in found]
    scores = [i["score"] for i in found]
    assert all(s is not None for s in scores) and scores == sorted(scores, reverse=True)

    filtered = (await sclient.store.search_items(space, query="python", filter={"kind": "doc"}, limit=2))["items"]
    assert sorted(i["key"] for i in filtered) == ["py", "tips"]

    # the graph searches the same index
    out = await sclient.runs.wait(None, "store_graph", input={"namespace": space, "query": "cooking pasta"})
    assert out["found"][0] == "pasta"


async def test_items_expire_at_once_and_are_swept(sclient, store_pg):
    space = ns("ttl")
    await sclient.store.put_item(space, key="brief", value={"text": "gone soon"}, ttl=0.02)  # 1.2 s
    await sclient.store.put_item(space, key="lasting", value={"text": "stays"})
    assert (await sclient.store.get_item(space, key="brief", refresh_ttl=False))["value"] == {"text": "gone soon"}

    async def gone():
        return await sclient.store.get_item(space, key="brief", refresh_ttl=False) is None

    await wait_until(gone)
    assert [i["key"] for i in (await sclient.store.search_items(space))["items"]] == ["lasting"]
    assert (await sclient.store.list_namespaces(prefix=space))["namespaces"] == [space]

    async def rows() -> dict[str, int | None]:
        async with await psycopg.AsyncConnection.connect(store_pg.get_uri()) as conn:
            cur = await conn.execute("SELECT key, ttl_minutes FROM store WHERE prefix = %s", (".".join(space),))
            return dict(await cur.fetchall())

    async def swept():
        return "brief" not in await rows()

    await wait_until(swept)  # the housekeeping deleted it
    assert (await rows())["lasting"] == 60  # store.ttl.default_ttl applies to items put without a ttl


async def test_thread_gets_the_default_ttl_and_is_swept(sclient, store_server):
    thread = await sclient.threads.create()
    got = httpx.get(f"{store_server.url}/threads/{thread['thread_id']}", params={"include": "ttl"}).json()
    assert got["ttl"]["strategy"] == "delete" and got["ttl"]["ttl_minutes"] == 0.02

    async def deleted():
        return httpx.get(f"{store_server.url}/threads/{thread['thread_id']}").status_code == 404

    await wait_until(deleted)
    kept = await sclient.threads.create(ttl={"strategy": "delete", "ttl": 60})  # an explicit TTL wins
    got = httpx.get(f"{store_server.url}/threads/{kept['thread_id']}", params={"include": "ttl"}).json()
    assert got["ttl"]["ttl_minutes"] == 60
    # a thread a run creates (if_not_exists, a stateless run kept) gets the default too
    made = await sclient.runs.create(str(uuid.uuid4()), "store_graph", input={"namespace": ["ttl"]}, if_not_exists="create")
    stateless = await sclient.runs.create(None, "store_graph", input={"namespace": ["ttl"]}, on_completion="keep")
    for run in (made, stateless):
        got = httpx.get(f"{store_server.url}/threads/{run['thread_id']}", params={"include": "ttl"}).json()
        assert got["ttl"]["ttl_minutes"] == 0.02, run


def test_semantic_search_without_pgvector_fails_at_start_with_how_to_install(tmp_path, database_uri):
    with psycopg.connect(database_uri) as conn:
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone():
            pytest.skip("this PostgreSQL has pgvector")
    srv = ServerProcess(write_config(tmp_path, STORE_CONFIG), env={"DATABASE_URI": database_uri})
    try:
        with pytest.raises(RuntimeError):
            srv.wait_ready()
        output = srv.output()
        assert "pgvector" in output and "CREATE EXTENSION vector" in output and "Traceback" not in output
    finally:
        srv.stop()
