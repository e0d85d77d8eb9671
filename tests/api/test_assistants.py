"""Assistants over HTTP, as the official langgraph-sdk client drives them."""
from __future__ import annotations

import ast
import uuid

import httpx
import pytest

ECHO_DEFAULT = "046b5dc7-2108-582c-9c6c-31d556d138f0"  # uuid5(NAMESPACE_GRAPH, "echo"), as the official server
UNKNOWN = "22222222-2222-4222-8222-222222222222"


def tag() -> dict:
    """Metadata unique to one test, so searches see only its assistants (the server is shared)."""
    return {"test": uuid.uuid4().hex}


async def test_each_graph_has_a_default_assistant_with_the_official_id(client):
    found = await client.assistants.search(metadata={"created_by": "system"}, limit=100)
    by_graph = {a["graph_id"]: a for a in found}
    echo = by_graph["echo"]
    assert echo["assistant_id"] == ECHO_DEFAULT
    assert (echo["name"], echo["version"], echo["config"], echo["context"]) == ("echo", 1, {}, {})
    for graph_id, assistant in by_graph.items():
        assert assistant["assistant_id"] == str(uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), graph_id))


async def test_create_returns_the_assistant_with_defaults(client):
    a = await client.assistants.create("echo")
    assert a["graph_id"] == "echo" and a["name"] == "Untitled" and a["version"] == 1
    assert (a["config"], a["context"], a["metadata"], a["description"]) == ({}, {}, {}, None)
    assert await client.assistants.get(a["assistant_id"]) == a


async def test_create_with_every_field_keeps_them(client):
    aid = str(uuid.uuid4())
    a = await client.assistants.create(
        "echo", assistant_id=aid, name="mine", description="about", metadata={"team": "a"},
        config={"tags": ["t"], "recursion_limit": 7},
    )
    assert (a["assistant_id"], a["name"], a["description"], a["metadata"]) == (aid, "mine", "about", {"team": "a"})
    assert a["config"] == {"tags": ["t"], "recursion_limit": 7}


async def test_configurable_and_context_mirror_each_other(client):
    from_config = await client.assistants.create("echo", config={"configurable": {"x": 1}})
    assert from_config["context"] == {"x": 1}
    from_context = await client.assistants.create("echo", context={"y": 2}, config={"tags": ["t"]})
    assert from_context["config"] == {"tags": ["t"], "configurable": {"y": 2}}


def test_configurable_together_with_context_is_400(http):
    r = http.post("/assistants", json={"graph_id": "echo", "config": {"configurable": {"a": 1}}, "context": {"b": 2}})
    assert r.status_code == 400 and "Cannot specify both configurable and context" in r.json()["detail"]


def test_duplicate_id_is_409_unless_do_nothing(http):
    aid = str(uuid.uuid4())
    first = http.post("/assistants", json={"graph_id": "echo", "assistant_id": aid, "name": "first"}).json()
    r = http.post("/assistants", json={"graph_id": "echo", "assistant_id": aid, "if_exists": "raise"})
    assert r.status_code == 409 and r.json() == {"detail": f"Assistant {aid} already exists"}
    r = http.post("/assistants", json={"graph_id": "chat", "assistant_id": aid, "if_exists": "do_nothing", "name": "x"})
    assert r.status_code == 200 and r.json() == first


def test_unknown_graph_is_404_listing_the_graphs(http):
    r = http.post("/assistants", json={"graph_id": "nope"})
    assert r.status_code == 404
    detail = r.json()["detail"]
    prefix = "Graph 'nope' not found. Expected one of: "
    assert detail.startswith(prefix)
    listed = ast.literal_eval(detail.removeprefix(prefix))
    assert listed == sorted(listed) and {"custom", "echo", "failing", "slow"} <= set(listed)  # whatever else tests add


async def test_update_creates_a_new_version_merging_metadata(client):
    a = await client.assistants.create("echo", metadata={"keep": 1, "n": 1}, name="v1")
    b = await client.assistants.update(a["assistant_id"], metadata={"n": 2}, name="v2")
    assert b["version"] == 2 and b["name"] == "v2" and b["metadata"] == {"keep": 1, "n": 2}
    c = await client.assistants.update(a["assistant_id"], context={"z": 3}, graph_id="chat")
    assert (c["version"], c["graph_id"], c["context"], c["config"]) == (3, "chat", {"z": 3}, {"configurable": {"z": 3}})
    assert c["created_at"] == a["created_at"] and c["updated_at"] > a["updated_at"]


async def test_versions_list_newest_first_with_paging_and_metadata(client):
    a = await client.assistants.create("echo", metadata={"step": 1})
    for step in (2, 3):
        await client.assistants.update(a["assistant_id"], metadata={"step": step})
    versions = await client.assistants.get_versions(a["assistant_id"])
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert "updated_at" not in versions[0]
    page = await client.assistants.get_versions(a["assistant_id"], limit=1, offset=1)
    assert [v["version"] for v in page] == [2]
    assert [v["version"] for v in await client.assistants.get_versions(a["assistant_id"], metadata={"step": 1})] == [1]


async def test_set_latest_restores_a_version_and_later_updates_continue_numbering(client):
    a = await client.assistants.create("echo", name="one", config={"configurable": {"x": 1}})
    await client.assistants.update(a["assistant_id"], name="two", context={"x": 2})
    back = await client.assistants.set_latest(a["assistant_id"], 1)
    assert (back["version"], back["name"], back["context"]) == (1, "one", {"x": 1})
    assert (await client.assistants.get(a["assistant_id"]))["name"] == "one"
    after = await client.assistants.update(a["assistant_id"], name="three")
    assert after["version"] == 3


def test_set_latest_of_a_missing_version_is_404(http, client):
    r = http.post(f"/assistants/{ECHO_DEFAULT}/latest", json={"version": 99})
    assert r.status_code == 404 and r.json() == {"detail": f"Version 99 not found for assistant {ECHO_DEFAULT}"}


async def test_delete_removes_the_assistant_and_its_versions(client, http):
    a = await client.assistants.create("echo")
    await client.assistants.delete(a["assistant_id"])
    assert http.get(f"/assistants/{a['assistant_id']}").status_code == 404
    r = http.delete(f"/assistants/{a['assistant_id']}")
    assert r.status_code == 404 and r.json() == {"detail": f"Assistant with ID {a['assistant_id']} not found"}


async def test_delete_with_threads_deletes_the_assistants_threads(client, http):
    a = await client.assistants.create("echo")
    mine = await client.threads.create(metadata={"assistant_id": a["assistant_id"]})
    other = await client.threads.create()
    await client.assistants.delete(a["assistant_id"], delete_threads=True)
    assert http.get(f"/threads/{mine['thread_id']}").status_code == 404
    assert http.get(f"/threads/{other['thread_id']}").status_code == 200


async def test_search_filters_by_metadata_graph_and_name_substring(client):
    t = tag()
    await client.assistants.create("echo", metadata=t, name="Alpha Bot")
    await client.assistants.create("chat", metadata=t, name="beta 100%")
    assert {a["name"] for a in await client.assistants.search(metadata=t)} == {"Alpha Bot", "beta 100%"}
    assert [a["name"] for a in await client.assistants.search(metadata=t, graph_id="chat")] == ["beta 100%"]
    assert [a["name"] for a in await client.assistants.search(metadata=t, name="PHA b")] == ["Alpha Bot"]
    assert [a["name"] for a in await client.assistants.search(metadata=t, name="0%")] == ["beta 100%"]
    assert await client.assistants.search(metadata=t, name="_") == []  # wildcards are literal


async def test_search_sorts_pages_and_selects(client):
    t = tag()
    for name in ("b", "c", "a"):
        await client.assistants.create("echo", metadata=t, name=name)
    assert [a["name"] for a in await client.assistants.search(metadata=t)] == ["a", "c", "b"]  # newest first
    by_name = await client.assistants.search(metadata=t, sort_by="name", sort_order="asc", limit=2, offset=1)
    assert [a["name"] for a in by_name] == ["b", "c"]
    selected = await client.assistants.search(metadata=t, select=["assistant_id", "name"], limit=1)
    assert set(selected[0]) == {"assistant_id", "name"}


async def test_search_reports_pagination_headers(client, http):
    t = tag()
    for _ in range(3):
        await client.assistants.create("echo", metadata=t)
    r = http.post("/assistants/search", json={"metadata": t, "limit": 2})
    assert (r.headers["x-pagination-total"], r.headers["x-pagination-next"]) == ("3", "2")
    r = http.post("/assistants/search", json={"metadata": t, "limit": 2, "offset": 2})
    assert r.headers["x-pagination-total"] == "3" and "x-pagination-next" not in r.headers
    page = await client.assistants.search(metadata=t, limit=2, response_format="object")
    assert page["next"] == "2" and len(page["assistants"]) == 2


async def test_count_applies_the_same_filters(client):
    t = tag()
    await client.assistants.create("echo", metadata=t, name="x")
    await client.assistants.create("chat", metadata=t, name="y")
    assert await client.assistants.count(metadata=t) == 2
    assert await client.assistants.count(metadata=t, graph_id="chat") == 1
    assert await client.assistants.count(metadata=t, name="X") == 1


@pytest.mark.parametrize(
    "body, detail",
    [
        ({"sort_by": "bogus"}, '"bogus" is not one of "assistant_id", "created_at" or 3 other candidates'),
        ({"select": ["name", "bogus"]}, '"bogus" is not one of'),
        ({"limit": 0}, "0 is less than the minimum of 1"),
        ({"limit": 1001}, "1001 is greater than the maximum of 1000"),
        ({"offset": -1}, "-1 is less than the minimum of 0"),
        ({"sort_order": "up"}, '"up" is not one of "asc" or "desc"'),
    ],
)
def test_invalid_search_is_422_naming_the_field(http, body, detail):
    r = http.post("/assistants/search", json=body)
    assert r.status_code == 422 and r.json()["detail"].startswith(detail)
    assert f'On instance["{next(iter(body))}"]' in r.json()["detail"]


async def test_graph_is_drawn_by_assistant_id_or_graph_id(client, http):
    by_id = await client.assistants.get_graph(ECHO_DEFAULT)
    assert [n["id"] for n in by_id["nodes"]] == ["__start__", "echo", "__end__"]
    assert by_id["nodes"][1]["data"] == {"name": "echo"}
    assert http.get("/assistants/echo/graph").json() == by_id


async def test_graph_xray_inlines_subgraphs(client, http):
    plain = {n["id"] for n in (await client.assistants.get_graph("subgraph"))["nodes"]}
    assert "child" in plain and "child:inner_a" not in plain
    for xray in (True, 1):
        nodes = {n["id"] for n in (await client.assistants.get_graph("subgraph", xray=xray))["nodes"]}
        assert "child:inner_a" in nodes
    r = http.get("/assistants/subgraph/graph", params={"xray": "abc"})
    assert r.status_code == 422 and r.json() == {"detail": "Invalid xray value"}


async def test_schemas_describe_input_output_state_config_and_context(client):
    s = await client.assistants.get_schemas(ECHO_DEFAULT)
    assert set(s) == {"graph_id", "input_schema", "output_schema", "state_schema", "config_schema", "context_schema"}
    assert s["graph_id"] == "echo"
    assert s["state_schema"]["title"] == "echo_state" and "messages" in s["state_schema"]["properties"]
    assert "messages" in s["input_schema"]["properties"]
    assert s["config_schema"] == {} and s["context_schema"] is None


async def test_subgraphs_by_namespace_and_recursively(client):
    sub_id = str(uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), "subgraph"))
    found = await client.assistants.get_subgraphs(sub_id)
    assert list(found) == ["child"] and found["child"]["state_schema"]["title"] == "LangGraphState"
    assert list(await client.assistants.get_subgraphs(sub_id, namespace="child", recurse=True)) == ["child"]
    assert await client.assistants.get_subgraphs(sub_id, namespace="nope") == {}
    assert await client.assistants.get_subgraphs(ECHO_DEFAULT) == {}


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/assistants/{}"), ("PATCH", "/assistants/{}"), ("DELETE", "/assistants/{}"),
        ("POST", "/assistants/{}/versions"), ("POST", "/assistants/{}/latest"),
        ("GET", "/assistants/{}/schemas"), ("GET", "/assistants/{}/subgraphs"),
    ],
)
@pytest.mark.parametrize("bad_id", ["echo", "not-a-uuid"])
def test_graph_ids_are_422_where_the_official_server_wants_a_uuid(http, method, path, bad_id):
    r = http.request(method, path.format(bad_id), json={} if method in ("POST", "PATCH") else None)
    assert r.status_code == 422 and r.json() == {"detail": "Invalid assistant ID: must be a UUID"}


def test_graph_of_an_unknown_non_uuid_is_422(http):
    assert http.get("/assistants/not-a-graph/graph").json() == {"detail": "Invalid assistant ID: must be a UUID"}


@pytest.mark.parametrize(
    "method, path, detail",
    [
        ("GET", "/assistants/{}", "Not Found"),
        ("GET", "/assistants/{}/graph", "Not Found"),
        ("GET", "/assistants/{}/schemas", "Not Found"),
        ("GET", "/assistants/{}/subgraphs", "Not Found"),
        ("PATCH", "/assistants/{}", "Assistant {} not found"),
        ("POST", "/assistants/{}/versions", "Assistant {} not found"),
        ("POST", "/assistants/{}/latest", "Assistant {} not found"),
        ("DELETE", "/assistants/{}", "Assistant with ID {} not found"),
    ],
)
def test_unknown_assistant_is_404(http, method, path, detail):
    body = {"version": 1} if path.endswith("latest") else {} if method in ("POST", "PATCH") else None
    r = http.request(method, path.format(UNKNOWN), json=body)
    assert r.status_code == 404 and r.json() == {"detail": detail.format(UNKNOWN)}


async def test_sdk_raises_on_missing_assistant(client):
    with pytest.raises(httpx.HTTPStatusError) as err:
        await client.assistants.get(UNKNOWN)
    assert err.value.response.status_code == 404
