"""Compatibility with the official server: the thread stream (run_done, ids, stream_modes, state updates),
LANGGRAPH_CONFIG for the default assistants."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from conftest import AGENT_SERVER, ServerProcess, create_database, drop_database, free_port
from run_helpers import HI, SLOW, STEPS, new_thread, say

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "graphs"


async def _join(client, thread_id: str, until, **kwargs) -> tuple[asyncio.Task, list]:
    """Join the thread stream in the background until `until(parts)`; returns once it is subscribed."""
    parts: list = []

    async def read():
        async for part in await client.threads.join_stream(thread_id, **kwargs):
            parts.append(part)
            if until(parts):
                return

    task = asyncio.create_task(read())
    await asyncio.sleep(0.5)  # joined before anything happens on the thread
    return task, parts


def _run_done(run_id: str):
    return lambda parts: any(p.data == {"status": "run_done", "run_id": run_id} for p in parts)


# ---- the thread stream ------------------------------------------------------------------------------

async def test_thread_stream_ends_each_run_with_run_done_and_gives_every_event_an_id(client):
    thread_id = await new_thread(client)
    task, parts = await _join(client, thread_id, lambda parts: sum(p.data.get("status") == "run_done" for p in parts) == 2)
    runs = []
    for text in ("one", "two"):
        run = await client.runs.create(thread_id, "echo", input=say(text), stream_mode="updates")
        await client.runs.join(thread_id, run["run_id"])
        runs.append(run["run_id"])
    await asyncio.wait_for(task, 15)
    metadata = [p.data for p in parts if p.event == "metadata"]
    assert metadata == [
        {"run_id": runs[0], "attempt": 1}, {"status": "run_done", "run_id": runs[0]},
        {"run_id": runs[1], "attempt": 1}, {"status": "run_done", "run_id": runs[1]},
    ]
    assert [p.event for p in parts] == ["metadata", "updates", "metadata"] * 2
    ids = [p.id for p in parts]
    assert all(ids) and len(set(ids)) == len(ids)


async def test_thread_stream_lifecycle_mode_gives_only_each_runs_start_and_end(client):
    thread_id = await new_thread(client)
    run_id = None
    task, parts = await _join(
        client, thread_id, lambda parts: run_id is not None and _run_done(run_id)(parts),
        params={"stream_modes": "lifecycle"},
    )
    run_id = (await client.runs.create(thread_id, SLOW, input={}, stream_mode=["values", "updates"]))["run_id"]
    await asyncio.wait_for(task, 15)
    assert [(p.event, p.data) for p in parts] == [
        ("metadata", {"run_id": run_id, "attempt": 1}), ("metadata", {"status": "run_done", "run_id": run_id}),
    ]
    assert (await client.threads.get_state(thread_id))["values"]["steps"] == STEPS


async def test_thread_stream_state_update_mode_gives_the_state_after_each_update(client):
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "echo", input=HI)
    task, parts = await _join(client, thread_id, lambda parts: len(parts) == 1, params={"stream_modes": "state_update"})
    await client.runs.wait(thread_id, "echo", input=say("a run is no state update"))
    update = await client.threads.update_state(thread_id, {"messages": [{"role": "user", "content": "manual"}]})
    await asyncio.wait_for(task, 15)
    [part] = parts
    assert part.event == "state_update" and part.id
    assert part.data["thread_id"] == thread_id
    state = part.data["state"]
    assert state == await client.threads.get_state(thread_id)
    assert state["checkpoint"]["checkpoint_id"] == update["checkpoint"]["checkpoint_id"]
    assert state["values"]["messages"][-1]["content"] == "manual"
    assert {"values", "next", "metadata", "checkpoint", "tasks", "interrupts"} <= set(state)


async def test_thread_stream_modes_combine_and_the_sdk_stream_mode_is_understood(client):
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "echo", input=HI)
    run_id = None
    task, parts = await _join(
        client, thread_id, lambda parts: run_id is not None and _run_done(run_id)(parts),
        stream_mode=["lifecycle", "state_update"],
    )
    await client.threads.update_state(thread_id, {"messages": [{"role": "user", "content": "manual"}]})
    run_id = (await client.runs.create(thread_id, "echo", input=say("after")))["run_id"]
    await asyncio.wait_for(task, 15)
    assert [p.event for p in parts] == ["state_update", "metadata", "metadata"]


def test_thread_stream_rejects_an_unknown_stream_mode(http):
    thread_id = http.post("/threads", json={}).json()["thread_id"]
    with http.stream("GET", f"/threads/{thread_id}/stream", params={"stream_modes": "lifecycle,values"}) as r:
        assert r.status_code == 422  # not a stream that never ends
        assert r.read() and r.json()["detail"] == "Invalid stream mode: values"


def test_thread_stream_rejects_a_last_event_id_that_is_not_a_stream_id(http):
    thread_id = http.post("/threads", json={}).json()["thread_id"]
    with http.stream("GET", f"/threads/{thread_id}/stream", headers={"Last-Event-ID": "garbage"}) as r:
        assert r.status_code == 422
        assert r.read() and r.json()["detail"] == "Invalid last-event-id: must be a valid Redis stream ID"
    with http.stream("GET", f"/threads/{thread_id}/stream", headers={"Last-Event-ID": "1796140283191-0"}) as r:
        assert r.status_code == 200


async def test_thread_stream_in_split_mode_gives_run_done_and_state_updates(cluster):
    cluster.add_worker()
    client = cluster.client
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "echo", input=HI)
    run_id = None
    task, parts = await _join(
        client, thread_id, lambda parts: run_id is not None and _run_done(run_id)(parts),
        params={"stream_modes": "run_modes,state_update"},
    )
    await client.threads.update_state(thread_id, {"messages": [{"role": "user", "content": "manual"}]})
    run_id = (await client.runs.create(thread_id, "echo", input=say("after"), stream_mode="updates"))["run_id"]
    await asyncio.wait_for(task, 20)
    assert [p.event for p in parts] == ["state_update", "metadata", "updates", "metadata"]
    assert parts[1].data == {"run_id": run_id, "attempt": 1}
    assert all(p.id for p in parts)


# ---- LANGGRAPH_CONFIG ---------------------------------------------------------------------------------

def _write_config(folder: Path, **extra) -> Path:
    path = folder / "langgraph.json"
    graphs = {"echo": f"{EXAMPLES}/echo.py:graph", "slow": f"{EXAMPLES}/slow.py:graph"}
    path.write_text(json.dumps({"graphs": graphs, **extra}))
    return path


def _default_assistants(url: str) -> dict[str, dict]:
    found = httpx.post(f"{url}/assistants/search", json={"metadata": {"created_by": "system"}}).json()
    return {a["graph_id"]: a for a in found}


def test_langgraph_config_configures_the_default_assistants_and_a_restart_applies_a_new_one(postgres_server, tmp_path):
    echo_config = {"configurable": {"model": "x"}, "recursion_limit": 7, "tags": ["t"]}
    config = _write_config(tmp_path, env={"LANGGRAPH_CONFIG": json.dumps({"echo": echo_config, "other": {}})})
    db = create_database(postgres_server)
    try:
        srv = ServerProcess(config, env={"DATABASE_URI": db}).wait_ready()  # from the config's env
        try:
            assistants = _default_assistants(srv.url)
            assert assistants["echo"]["config"] == echo_config
            assert assistants["echo"]["context"] == {"model": "x"}  # configurable and context mirror each other
            assert (assistants["slow"]["config"], assistants["slow"]["context"]) == ({}, {})
            thread = httpx.post(f"{srv.url}/threads", json={}).json()["thread_id"]
            run = httpx.post(f"{srv.url}/threads/{thread}/runs/wait", json={"assistant_id": "echo", "input": HI})
            assert run.status_code == 200
            runs = httpx.get(f"{srv.url}/threads/{thread}/runs").json()
            assert runs[0]["kwargs"]["config"]["configurable"]["model"] == "x"
        finally:
            srv.stop()
        # The real environment wins over the config's env; the default assistants follow the new config.
        slow_config = {"configurable": {"delay": 0.01}}
        env = {"DATABASE_URI": db, "LANGGRAPH_CONFIG": json.dumps({"slow": slow_config})}
        srv = ServerProcess(config, env=env).wait_ready()
        try:
            assistants = _default_assistants(srv.url)
            assert (assistants["echo"]["config"], assistants["echo"]["context"]) == ({}, {})
            assert (assistants["slow"]["config"], assistants["slow"]["context"]) == (slow_config, {"delay": 0.01})
            versions = httpx.post(f"{srv.url}/assistants/{assistants['echo']['assistant_id']}/versions", json={}).json()
            assert [v["config"] for v in versions] == [{}, echo_config]  # the earlier config stays in its history
        finally:
            srv.stop()
        srv = ServerProcess(config, env=env).wait_ready()  # the same config again: nothing changes
        try:
            assert _default_assistants(srv.url)["slow"]["version"] == assistants["slow"]["version"]
        finally:
            srv.stop()
    finally:
        drop_database(postgres_server, db)


def test_without_langgraph_config_an_edited_default_assistant_survives_a_restart(postgres_server, tmp_path):
    config, db = _write_config(tmp_path), create_database(postgres_server)
    env = {"DATABASE_URI": db, "LANGGRAPH_CONFIG": ""}
    try:
        srv = ServerProcess(config, env=env).wait_ready()
        try:
            echo = _default_assistants(srv.url)["echo"]["assistant_id"]
            r = httpx.patch(f"{srv.url}/assistants/{echo}", json={"config": {"configurable": {"model": "mine"}}})
            assert r.status_code == 200
        finally:
            srv.stop()
        srv = ServerProcess(config, env=env).wait_ready()
        try:
            assert _default_assistants(srv.url)["echo"]["context"] == {"model": "mine"}
        finally:
            srv.stop()
    finally:
        drop_database(postgres_server, db)


@pytest.mark.parametrize("value, problem", [
    ("{bad", "is not valid JSON"), ('["echo"]', "must be a JSON object"), ('{"echo": {"configurable": [1]}}', "must be a JSON object"),
])
def test_langgraph_config_that_is_not_a_json_object_stops_the_start_with_one_line(tmp_path, value, problem):
    env = {**os.environ, "DATABASE_URI": "postgresql://postgres@127.0.0.1:1/none", "LANGGRAPH_CONFIG": value}
    result = subprocess.run(
        [*AGENT_SERVER, "dev", "--config", str(_write_config(tmp_path)), "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("agent-server: error: environment variable LANGGRAPH_CONFIG") and problem in last
