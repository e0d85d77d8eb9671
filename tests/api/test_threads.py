"""Threads API: create, get, update, delete, search, count, copy, prune — through the official SDK."""
from __future__ import annotations

import uuid

import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError

HI = {"messages": [{"role": "user", "content": "hi"}]}
FRESH_THREAD_FIELDS = {
    "thread_id", "created_at", "updated_at", "state_updated_at", "metadata", "status", "config", "values",
}
THREAD_FIELDS = FRESH_THREAD_FIELDS | {"interrupts", "error"}  # once the thread has state


async def ran_echo(client, **create) -> dict:
    thread = await client.threads.create(**create)
    await client.runs.wait(thread["thread_id"], "echo", input=HI)
    return await client.threads.get(thread["thread_id"])


# ---- create / get --------------------------------------------------------------------------------

async def test_create_returns_an_idle_thread_with_no_values(client):
    thread = await client.threads.create(metadata={"owner": "me"})
    assert set(thread) == FRESH_THREAD_FIELDS
    assert uuid.UUID(thread["thread_id"])
    assert thread["status"] == "idle"
    assert thread["metadata"] == {"owner": "me"}
    assert thread["values"] is None
    assert thread["config"] == {}
    assert await client.threads.get(thread["thread_id"]) == thread


async def test_create_with_a_given_thread_id_uses_it(client):
    thread_id = str(uuid.uuid4())
    thread = await client.threads.create(thread_id=thread_id)
    assert thread["thread_id"] == thread_id


async def test_create_twice_raises_conflict_by_default(client):
    thread = await client.threads.create()
    with pytest.raises(ConflictError):
        await client.threads.create(thread_id=thread["thread_id"])
    with pytest.raises(ConflictError):
        await client.threads.create(thread_id=thread["thread_id"], if_exists="raise")


async def test_create_with_do_nothing_returns_the_existing_thread(client):
    thread = await client.threads.create(metadata={"a": 1})
    again = await client.threads.create(thread_id=thread["thread_id"], metadata={"b": 2}, if_exists="do_nothing")
    assert again == thread


async def test_create_with_graph_id_stores_it_in_metadata(client):
    thread = await client.threads.create(graph_id="echo", metadata={"x": 1})
    assert thread["metadata"] == {"x": 1, "graph_id": "echo"}


async def test_create_with_supersteps_prepopulates_state(client):
    thread = await client.threads.create(
        graph_id="echo",
        supersteps=[
            {"updates": [{"values": {"messages": [{"type": "human", "content": "hi"}]}, "as_node": "__start__"}]},
            {"updates": [{"values": {"messages": [{"type": "ai", "content": "yo"}]}, "as_node": "echo"}]},
        ],
    )
    assert [m["content"] for m in thread["values"]["messages"]] == ["hi", "yo"]
    assert thread["status"] == "idle"
    state = await client.threads.get_state(thread["thread_id"])
    assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai"]
    assert state["metadata"]["source"] == "update" and state["next"] == []


async def test_create_with_supersteps_but_no_graph_is_rejected(http):
    r = http.post("/threads", json={"supersteps": [{"updates": [{"values": {}, "as_node": "__start__"}]}]})
    assert r.status_code == 422


async def test_create_with_ttl_is_accepted_and_reported_on_include(client, http):
    thread = await client.threads.create(ttl=10)
    assert "ttl" not in thread
    got = http.get(f"/threads/{thread['thread_id']}", params={"include": "ttl"}).json()
    assert got["ttl"]["strategy"] == "delete" and got["ttl"]["ttl_minutes"] == 10
    assert got["ttl"]["expires_at"] > got["created_at"]


async def test_create_rejects_bad_bodies(http):
    assert http.post("/threads", content=b"").status_code == 422
    assert http.post("/threads", content=b"{not json").status_code == 422
    assert http.post("/threads", json={"thread_id": "not-a-uuid"}).status_code == 422
    assert http.post("/threads", json={"if_exists": "bogus"}).status_code == 422
    assert http.post("/threads", json={"metadata": "text"}).status_code == 422
    assert http.post("/threads", json={"ttl": {"ttl": "soon"}}).status_code == 422


async def test_get_unknown_thread_is_404(client):
    with pytest.raises(NotFoundError):
        await client.threads.get(str(uuid.uuid4()))


async def test_get_non_uuid_thread_is_422(http):
    r = http.get("/threads/not-a-uuid")
    assert r.status_code == 422
    assert r.json() == {"detail": "Invalid thread ID: must be a UUID"}


async def test_thread_after_a_run_carries_its_values_and_graph(client):
    thread = await ran_echo(client)
    assert set(thread) == THREAD_FIELDS
    assert thread["status"] == "idle"
    assert [m["content"] for m in thread["values"]["messages"]] == ["hi", "echo: hi"]
    assert thread["metadata"]["graph_id"] == "echo"
    assert thread["interrupts"] == {} and thread["error"] is None
    assert thread["state_updated_at"] >= thread["created_at"]


async def test_interrupted_thread_lists_its_interrupts_by_task(client):
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "interrupt", input={"topic": "cats"})
    thread = await client.threads.get(thread["thread_id"])
    assert thread["status"] == "interrupted"
    [(task_id, interrupts)] = thread["interrupts"].items()
    assert interrupts == [
        {"value": {"question": "approve the draft?", "draft": "draft about cats"}, "id": interrupts[0]["id"]}
    ]
    state = await client.threads.get_state(thread["thread_id"])
    assert state["tasks"][0]["id"] == task_id and state["interrupts"] == interrupts


# ---- update / delete -----------------------------------------------------------------------------

async def test_update_merges_metadata(client):
    thread = await client.threads.create(metadata={"a": 1, "b": 2})
    updated = await client.threads.update(thread["thread_id"], metadata={"b": None, "c": 3})
    assert updated["metadata"] == {"a": 1, "b": None, "c": 3}
    assert updated["updated_at"] > thread["updated_at"]
    assert (await client.threads.get(thread["thread_id"]))["metadata"] == updated["metadata"]


async def test_update_unknown_thread_is_404(client):
    with pytest.raises(NotFoundError):
        await client.threads.update(str(uuid.uuid4()), metadata={})


async def test_update_rejects_non_object_metadata(http, client):
    thread = await client.threads.create()
    assert http.patch(f"/threads/{thread['thread_id']}", json={"metadata": [1]}).status_code == 422


async def test_delete_removes_the_thread_and_its_checkpoints(client, http):
    thread = await ran_echo(client)
    thread_id = thread["thread_id"]
    assert http.get(f"/threads/{thread_id}/storage").json()["checkpoints"]["count"] > 0
    assert http.delete(f"/threads/{thread_id}").status_code == 204
    with pytest.raises(NotFoundError):
        await client.threads.get(thread_id)
    with pytest.raises(NotFoundError):
        await client.threads.delete(thread_id)
    # the same id starts afresh: no state is left behind
    await client.threads.create(thread_id=thread_id, graph_id="echo")
    assert (await client.threads.get_state(thread_id))["values"] == {}
    assert await client.threads.get_history(thread_id) == []


# ---- search / count ------------------------------------------------------------------------------

async def test_search_filters_by_metadata_values_status_and_ids(client):
    tag = uuid.uuid4().hex
    plain = await client.threads.create(metadata={"tag": tag})
    ran = await ran_echo(client, metadata={"tag": tag, "kind": "ran"})

    def ids(threads):
        return {t["thread_id"] for t in threads}

    assert ids(await client.threads.search(metadata={"tag": tag})) == {plain["thread_id"], ran["thread_id"]}
    assert ids(await client.threads.search(metadata={"tag": tag, "kind": "ran"})) == {ran["thread_id"]}
    assert ids(await client.threads.search(metadata={"tag": tag}, values={"messages": [{"content": "hi"}]})) == {
        ran["thread_id"]
    }
    assert ids(await client.threads.search(ids=[plain["thread_id"]])) == {plain["thread_id"]}
    assert ids(await client.threads.search(metadata={"tag": tag}, status="busy")) == set()
    assert len(await client.threads.search(metadata={"tag": tag}, status="idle")) == 2


async def test_search_sorts_pages_and_selects(client, http):
    tag = uuid.uuid4().hex
    made = [(await client.threads.create(metadata={"tag": tag}))["thread_id"] for _ in range(3)]
    newest_first = [t["thread_id"] for t in await client.threads.search(metadata={"tag": tag})]
    assert newest_first == made[::-1]
    asc = await client.threads.search(metadata={"tag": tag}, sort_by="created_at", sort_order="asc")
    assert [t["thread_id"] for t in asc] == made
    by_id = await client.threads.search(metadata={"tag": tag}, sort_by="thread_id", sort_order="asc")
    assert [t["thread_id"] for t in by_id] == sorted(made)
    page = await client.threads.search(metadata={"tag": tag}, sort_by="created_at", sort_order="asc", limit=1, offset=1)
    assert [t["thread_id"] for t in page] == made[1:2]
    selected = await client.threads.search(metadata={"tag": tag}, select=["thread_id", "status"])
    assert all(set(t) == {"thread_id", "status"} for t in selected)
    r = http.post("/threads/search", json={"metadata": {"tag": tag}, "limit": 2})
    assert r.headers["x-pagination-total"] == "3" and r.headers["x-pagination-next"] == "2"


async def test_search_extracts_json_paths(client):
    thread = await ran_echo(client, metadata={"tag": uuid.uuid4().hex})
    [found] = await client.threads.search(
        ids=[thread["thread_id"]],
        extract={"last": "values.messages[-1].content", "graph": "metadata.graph_id", "none": "values.nope"},
    )
    assert found["extracted"] == {"last": "echo: hi", "graph": "echo", "none": None}


async def test_search_rejects_bad_bodies(http):
    for body in ({"status": "bogus"}, {"sort_by": "bogus"}, {"select": ["bogus"]}, {"limit": 0},
                 {"offset": -1}, {"ids": ["not-a-uuid"]}, {"metadata": 3}):
        assert http.post("/threads/search", json=body).status_code == 422, body


async def test_count_counts_matching_threads(client):
    tag = uuid.uuid4().hex
    for _ in range(2):
        await client.threads.create(metadata={"tag": tag})
    await ran_echo(client, metadata={"tag": tag})
    assert await client.threads.count(metadata={"tag": tag}) == 3
    assert await client.threads.count(metadata={"tag": tag}, values={"messages": [{"content": "hi"}]}) == 1
    assert await client.threads.count(metadata={"tag": tag}, status="interrupted") == 0


# ---- copy / prune --------------------------------------------------------------------------------

async def test_copy_makes_a_new_thread_with_the_same_state_and_history(client):
    source = await ran_echo(client, metadata={"k": "v"})
    copy = await client.threads.copy(source["thread_id"])
    assert copy["thread_id"] != source["thread_id"]
    assert copy["metadata"] == source["metadata"] and copy["values"] == source["values"]
    state = await client.threads.get_state(copy["thread_id"])
    assert state["values"] == source["values"]
    assert state["checkpoint"]["thread_id"] == copy["thread_id"]
    old = await client.threads.get_history(source["thread_id"], limit=10)
    new = await client.threads.get_history(copy["thread_id"], limit=10)
    assert [s["checkpoint_id"] for s in new] == [s["checkpoint_id"] for s in old]
    # the copy lives on independently
    await client.runs.wait(copy["thread_id"], "echo", input=HI)
    assert len((await client.threads.get_state(source["thread_id"]))["values"]["messages"]) == 2
    assert len((await client.threads.get_state(copy["thread_id"]))["values"]["messages"]) == 4


async def test_copy_unknown_thread_is_404(client):
    with pytest.raises(NotFoundError):
        await client.threads.copy(str(uuid.uuid4()))


async def test_prune_delete_removes_threads(client):
    one, two = await ran_echo(client), await client.threads.create()
    result = await client.threads.prune([one["thread_id"], two["thread_id"], str(uuid.uuid4())])
    assert result == {"pruned_count": 2}
    for thread in (one, two):
        with pytest.raises(NotFoundError):
            await client.threads.get(thread["thread_id"])


async def test_prune_keep_latest_keeps_only_the_latest_checkpoint(client):
    thread = await ran_echo(client)
    await client.runs.wait(thread["thread_id"], "echo", input=HI)
    before = await client.threads.get_state(thread["thread_id"])
    assert len(await client.threads.get_history(thread["thread_id"], limit=100)) > 1
    result = await client.threads.prune([thread["thread_id"]], strategy="keep_latest")
    assert result == {"pruned_count": 1}
    history = await client.threads.get_history(thread["thread_id"], limit=100)
    assert [s["checkpoint_id"] for s in history] == [before["checkpoint_id"]]
    assert history[0]["values"] == before["values"]
    assert (await client.threads.get(thread["thread_id"]))["values"] == before["values"]


async def test_prune_rejects_bad_bodies(http):
    assert http.post("/threads/prune", json={}).status_code == 422
    assert http.post("/threads/prune", json={"thread_ids": [str(uuid.uuid4())], "strategy": "x"}).status_code == 422


# ---- storage ----------------------------------------------------------------------------------------

async def test_storage_reports_the_bytes_of_a_threads_checkpoints(client, http):
    fresh = await client.threads.create()
    empty = http.get(f"/threads/{fresh['thread_id']}/storage").json()
    assert empty["total_bytes"] == 0 and empty["checkpoints"] == {"count": 0, "bytes": 0}
    thread = await ran_echo(client)
    usage = http.get(f"/threads/{thread['thread_id']}/storage").json()
    assert usage["thread_id"] == thread["thread_id"]
    assert usage["checkpoints"]["count"] == len(await client.threads.get_history(thread["thread_id"], limit=100))
    assert "messages" in usage["channel_values"]["by_channel"]
    parts = usage["checkpoints"]["bytes"] + usage["channel_values"]["bytes"] + usage["pending_writes"]["bytes"]
    assert usage["total_bytes"] == parts > 0
    assert http.get(f"/threads/{uuid.uuid4()}/storage").status_code == 404


# ---- status ----------------------------------------------------------------------------------------

async def test_status_is_busy_while_a_run_executes_then_idle(client):
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "slow", input={}, config={"configurable": {"delay": 0.3}})
    assert (await client.threads.get(thread["thread_id"]))["status"] == "busy"
    assert thread["thread_id"] in {t["thread_id"] for t in await client.threads.search(status="busy", limit=1000)}
    await client.runs.join(thread["thread_id"], run["run_id"])
    assert (await client.threads.get(thread["thread_id"]))["status"] == "idle"


async def test_status_is_error_after_a_failed_run(client):
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "failing", input={"fail": True}, raise_error=False)
    got = await client.threads.get(thread["thread_id"])
    assert got["status"] == "error"
    assert got["error"]["error"] and got["error"]["message"]
    assert await client.threads.count(status="error") >= 1


async def test_create_with_supersteps_and_do_nothing_leaves_an_existing_thread_alone(client):
    thread = await ran_echo(client)
    steps = [{"updates": [{"values": {"messages": [{"type": "human", "content": "x"}]}, "as_node": "__start__"}]}]
    again = await client.threads.create(
        thread_id=thread["thread_id"], graph_id="echo", supersteps=steps, if_exists="do_nothing"
    )
    assert again["values"] == thread["values"]


async def test_create_with_a_bad_superstep_creates_nothing(client, http):
    thread_id = str(uuid.uuid4())
    steps = [{"updates": [{"values": {"messages": []}, "as_node": "nope"}]}]
    r = http.post("/threads", json={"thread_id": thread_id, "metadata": {"graph_id": "echo"}, "supersteps": steps})
    assert r.status_code == 400
    with pytest.raises(NotFoundError):
        await client.threads.get(thread_id)


async def test_a_thread_past_its_ttl_is_deleted_with_its_state(client):
    import asyncio

    thread = await client.threads.create(ttl={"strategy": "delete", "ttl": 0.01})  # 0.6 s
    await client.runs.wait(thread["thread_id"], "echo", input={"messages": [{"role": "user", "content": "x"}]})
    for _ in range(120):  # the queue's housekeeping runs every few seconds
        try:
            await client.threads.get(thread["thread_id"])
        except NotFoundError:
            break
        await asyncio.sleep(0.1)
    with pytest.raises(NotFoundError):
        await client.threads.get_state(thread["thread_id"])
