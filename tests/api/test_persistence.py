"""`agent-server dev` without DATABASE_URI: the embedded PostgreSQL keeps everything across restarts."""
from __future__ import annotations

import json

import pytest
from langgraph_sdk import get_client

from conftest import TESTS, ServerProcess, stop_stray_postgres
from run_helpers import HI

EXAMPLES = TESTS.parent / "examples"


@pytest.fixture(autouse=True)
def _no_postgres_left(tmp_path):
    """The server stops the embedded PostgreSQL it started in tmp_path; if it did not (a failure, a server
    killed), the test does."""
    yield
    stop_stray_postgres(tmp_path.resolve())


@pytest.fixture
def no_database_uri(monkeypatch):
    """The server's environment names no PostgreSQL: it must start its own."""
    for name in ("DATABASE_URI", "POSTGRES_URI"):
        monkeypatch.delenv(name, raising=False)


async def snapshot(url: str, thread_id: str) -> dict:
    client = get_client(url=url)
    return {
        "thread": await client.threads.get(thread_id),
        "state": await client.threads.get_state(thread_id),
        "history": await client.threads.get_history(thread_id, limit=100),
        "assistants": sorted(await client.assistants.search(limit=100), key=lambda a: a["assistant_id"]),
    }


async def test_threads_state_and_assistants_survive_a_restart(no_database_uri, tmp_path):
    env = {"AGENT_SERVER_DATA_DIR": str(tmp_path)}
    first = ServerProcess(env=env)
    try:
        first.wait_ready(120)
        client = get_client(url=first.url)
        await client.assistants.create("echo", name="my echo", metadata={"mine": True})
        thread = await client.threads.create(metadata={"owner": "me"})
        await client.runs.wait(thread["thread_id"], "echo", input=HI)
        before = await snapshot(first.url, thread["thread_id"])
    finally:
        first.stop()
    assert (tmp_path / "pgdata").is_dir()

    second = ServerProcess(env=env)
    try:
        second.wait_ready(120)
        after = await snapshot(second.url, thread["thread_id"])
        assert after == before
        assert [m["content"] for m in after["state"]["values"]["messages"]] == ["hi", "echo: hi"]
        assert any(a["name"] == "my echo" for a in after["assistants"])
        # and the thread carries on where it stopped
        await get_client(url=second.url).runs.wait(thread["thread_id"], "echo", input=HI)
        state = await get_client(url=second.url).threads.get_state(thread["thread_id"])
        assert len(state["values"]["messages"]) == 4
    finally:
        second.stop()


async def test_dev_without_database_uri_keeps_its_data_beside_the_config(no_database_uri, tmp_path, monkeypatch):
    monkeypatch.delenv("AGENT_SERVER_DATA_DIR", raising=False)
    config = tmp_path / "langgraph.json"
    config.write_text(json.dumps({"graphs": {"echo": str(EXAMPLES / "graphs" / "echo.py") + ":graph"}}))
    server = ServerProcess(config=config)
    try:
        server.wait_ready(120)
        client = get_client(url=server.url)
        thread = await client.threads.create()
        assert (await client.runs.wait(thread["thread_id"], "echo", input=HI))["messages"][-1]["content"] == "echo: hi"
        assert [a["graph_id"] for a in await client.assistants.search()] == ["echo"]
    finally:
        server.stop()
    assert (tmp_path / ".agent_server" / "pgdata").is_dir()


def test_stopping_the_server_stops_its_embedded_postgres(no_database_uri, tmp_path):
    import psutil

    server = ServerProcess(env={"AGENT_SERVER_DATA_DIR": str(tmp_path)})
    server.wait_ready(120)
    pgdata = str(tmp_path / "pgdata")

    def postgres_running() -> bool:
        return any(pgdata in " ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"]))

    assert postgres_running()
    server.stop()  # SIGTERM, as a service manager stops it
    assert not postgres_running()
