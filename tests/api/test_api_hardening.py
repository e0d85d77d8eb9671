"""Bad or racing requests get a clear answer and leave nothing half done."""
from __future__ import annotations

import asyncio

import psycopg

HI = {"messages": [{"role": "user", "content": "hi"}]}


def _checkpoint_rows(database_uri: str, thread_id: str) -> int:
    with psycopg.connect(database_uri) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM checkpoints WHERE thread_id = %(t)s)"
            " + (SELECT count(*) FROM checkpoint_blobs WHERE thread_id = %(t)s)",
            {"t": thread_id},
        ).fetchone()[0]


async def test_deleting_an_assistant_with_its_threads_removes_their_checkpoints(client, http, database_uri):
    assistant = await client.assistants.create("echo", name="short-lived")
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], assistant["assistant_id"], input=HI)
    assert _checkpoint_rows(database_uri, thread["thread_id"]) > 0
    r = http.delete(f"/assistants/{assistant['assistant_id']}", params={"delete_threads": "true"})
    assert r.status_code == 204
    assert http.get(f"/threads/{thread['thread_id']}").status_code == 404
    assert _checkpoint_rows(database_uri, thread["thread_id"]) == 0


async def test_concurrent_state_updates_each_build_on_the_one_before(client):
    thread = await client.threads.create(graph_id="echo")
    await asyncio.gather(*(
        client.threads.update_state(thread["thread_id"], {"messages": [{"role": "user", "content": f"m{i}"}]})
        for i in range(10)
    ))
    state = await client.threads.get_state(thread["thread_id"])
    assert sorted(m["content"] for m in state["values"]["messages"]) == sorted(f"m{i}" for i in range(10))


async def test_a_state_update_at_an_unknown_checkpoint_is_not_found_and_changes_nothing(client, http):
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "echo", input=HI)
    before = await client.threads.get_state(thread["thread_id"])
    r = http.post(
        f"/threads/{thread['thread_id']}/state",
        json={"values": {"messages": []}, "checkpoint_id": "1ef00000-0000-6000-8000-000000000000"},
    )
    assert r.status_code == 404
    assert (await client.threads.get_state(thread["thread_id"]))["values"] == before["values"]


def test_text_json_cannot_carry_is_rejected_not_a_server_error(http):
    r = http.post("/threads", content=b'{"metadata": {"k": "\\ud800"}}', headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = http.post("/threads", json={"metadata": {"k": 2**70}})
    assert r.status_code == 422


def test_a_graph_id_that_is_not_a_string_in_metadata_is_not_a_server_error(http):
    thread = http.post("/threads", json={"metadata": {"graph_id": {"a": 1}}}).json()
    assert http.get(f"/threads/{thread['thread_id']}/state").status_code == 200


def test_a_superstep_command_with_unknown_fields_is_bad_input(http):
    r = http.post("/threads", json={
        "metadata": {"graph_id": "echo"},
        "supersteps": [{"updates": [{"values": None, "command": {"bogus": 1}, "as_node": "echo"}]}],
    })
    assert r.status_code == 400


def test_setting_the_latest_version_needs_a_version(http):
    assistant = http.post("/assistants", json={"graph_id": "echo"}).json()
    assert http.post(f"/assistants/{assistant['assistant_id']}/latest", json={}).status_code == 422
