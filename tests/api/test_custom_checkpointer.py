"""A checkpointer that is not PostgreSQL, through checkpointer.path: langgraph-checkpoint-sqlite's async saver
(tests/persistence/sqlite_saver.py), and a custom store through store.path (an InMemoryStore). Everything the
API does with checkpoints works on it, through the saver (or answers the documented 422: rollback); split mode
recovers a run from a killed worker; a saver missing a required method, or a path that does not give a context
manager of a saver, refuses to start."""
from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path

import httpx
import psycopg
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import UnprocessableEntityError

from conftest import ServerProcess, create_database, drop_database, first_to_log, stop_all
from run_helpers import FINISHED, SLOW, STEPS, new_thread, run_status, slow, wait_for

TESTS = Path(__file__).resolve().parents[1]
EXAMPLES = TESTS.parent / "examples"
SAVER = TESTS / "persistence" / "sqlite_saver.py"
STORE = TESTS / "persistence" / "memory_store.py"


def write_config(folder: Path, checkpointer: str = "checkpointer", **extra) -> Path:
    config = {
        "dependencies": [str(EXAMPLES)],
        "graphs": {
            "interrupt": str(EXAMPLES / "graphs/interrupt.py:graph"),
            "slow": str(EXAMPLES / "graphs/slow.py:graph"),
            "store_graph": str(TESTS / "graphs/store_graph.py:graph"),
        },
        "checkpointer": {"path": f"{SAVER}:{checkpointer}"},
        **extra,
    }
    path = folder / "langgraph.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def custom(tmp_path_factory, postgres_server):
    """A single-process server with the SQLite saver and the in-memory store, on a database of its own."""
    folder = tmp_path_factory.mktemp("custom_checkpointer")
    uri = create_database(postgres_server)
    config = write_config(folder, store={"path": f"{STORE}:store"})
    srv = ServerProcess(config, env={"DATABASE_URI": uri, "SQLITE_CHECKPOINTS": str(folder / "checkpoints.sqlite")})
    try:
        srv.wait_ready()
        srv.database_uri, srv.sqlite = uri, folder / "checkpoints.sqlite"
        yield srv
    finally:
        srv.stop()
        drop_database(postgres_server, uri)


@pytest.fixture
def client(custom):
    return get_client(url=custom.url)


def sqlite_checkpoints(srv, thread_id: str) -> int:
    with sqlite3.connect(srv.sqlite) as conn:
        return conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = ?", (thread_id,)).fetchone()[0]


def postgres_checkpoints(srv) -> int:
    with psycopg.connect(srv.database_uri) as conn:
        return conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0]


async def test_runs_streams_and_history_use_the_custom_saver(custom, client):
    info = httpx.get(f"{custom.url}/info").json()["persistence"]
    assert info["checkpointer"] == {
        "backend": "custom", "class": "AsyncSqliteSaver",
        "capabilities": {"rollback": False, "copy": "reinsert", "prune": "reinsert", "storage_report": "estimate",
                         "orphan_collection": False},
    }
    assert "rollback off" in custom.output()  # said at start too
    thread_id = await new_thread(client)
    parts = [p async for p in client.runs.stream(thread_id, SLOW, input={}, config=slow(0.01), stream_mode="values")]
    assert [p.data for p in parts if p.event == "values"][-1] == {"steps": STEPS}
    state = await client.threads.get_state(thread_id)
    assert state["values"] == {"steps": STEPS} and state["next"] == []
    history = await client.threads.get_history(thread_id, limit=100)
    assert len(history) == len(STEPS) + 2  # input, each step, and the empty start
    assert sqlite_checkpoints(custom, thread_id) == len(history)
    assert postgres_checkpoints(custom) == 0  # nothing in our database's checkpoint tables


async def test_human_in_the_loop_resume(client):
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "interrupt", input={"topic": "sqlite"})
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["review"] and state["interrupts"][0]["value"]["draft"] == "draft about sqlite"
    assert (await client.threads.get(thread_id))["status"] == "interrupted"
    done = await client.runs.wait(thread_id, "interrupt", command={"resume": True})
    assert done["final"] == "draft about sqlite"
    await client.threads.update_state(thread_id, {"final": "edited"}, as_node="finish")
    assert (await client.threads.get_state(thread_id))["values"]["final"] == "edited"


async def test_copy_prune_and_storage_through_the_saver(custom, client):
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "interrupt", input={"topic": "copies"})
    history = await client.threads.get_history(thread_id, limit=100)
    copy = await client.threads.copy(thread_id)
    copied = await client.threads.get_history(copy["thread_id"], limit=100)
    assert [h["values"] for h in copied] == [h["values"] for h in history]
    done = await client.runs.wait(copy["thread_id"], "interrupt", command={"resume": False})
    assert done["final"] == "rejected"  # the copy resumes its own interrupt; the original still waits
    assert (await client.threads.get_state(thread_id))["next"] == ["review"]

    report = httpx.get(f"{custom.url}/threads/{thread_id}/storage").json()
    assert report["checkpoints"]["count"] == len(history) and report["total_bytes"] > 0
    assert {"topic", "draft"} <= set(report["channel_values"]["by_channel"])

    assert await client.threads.prune([thread_id], strategy="keep_latest") == {"pruned_count": 1}
    kept = await client.threads.get_history(thread_id, limit=100)
    assert len(kept) == 1 and kept[0]["values"] == history[0]["values"] and kept[0]["next"] == ["review"]
    done = await client.runs.wait(thread_id, "interrupt", command={"resume": True})
    assert done["final"] == "draft about copies"

    await client.threads.delete(thread_id)
    assert sqlite_checkpoints(custom, thread_id) == 0


async def test_rollback_is_refused_without_adelete_for_runs(client):
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, SLOW, input={}, config=slow(0.3))
    with pytest.raises(UnprocessableEntityError, match="cannot delete the checkpoints of given runs"):
        await client.runs.create(thread_id, SLOW, input={}, multitask_strategy="rollback")
    with pytest.raises(UnprocessableEntityError, match="rollback"):
        await client.runs.cancel(thread_id, run["run_id"], action="rollback")
    await client.runs.create(thread_id, SLOW, input={}, config=slow(0.01), multitask_strategy="interrupt")
    await client.runs.join(thread_id, run["run_id"])
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "interrupted"


async def test_the_custom_store_is_the_graphs_and_the_apis(custom, client):
    await client.store.put_item(["notes"], "from-api", {"text": "hello graph"})
    out = await client.runs.wait(None, "store_graph", input={
        "namespace": ["notes"], "get": "from-api", "put": {"from-graph": {"text": "hello api"}},
    })
    assert out["got"] == {"text": "hello graph"}
    assert (await client.store.get_item(["notes"], "from-graph"))["value"] == {"text": "hello api"}
    assert httpx.get(f"{custom.url}/info").json()["persistence"]["store"] == {"backend": "custom", "class": "TestStore"}
    with psycopg.connect(custom.database_uri) as conn:  # nothing went to our store's table
        assert conn.execute("SELECT count(*) FROM store").fetchone()[0] == 0


async def test_split_mode_recovers_a_run_from_a_killed_worker(tmp_path, postgres_server, redis_uri):
    uri = create_database(postgres_server)
    config = write_config(tmp_path)
    env = {"DATABASE_URI": uri, "REDIS_URI": redis_uri, "AGENT_SERVER_LEASE_SECS": "3",
           "SQLITE_CHECKPOINTS": str(tmp_path / "checkpoints.sqlite")}
    api = ServerProcess(config, env=env, command="serve", args=["--no-queue", "--host", "127.0.0.1"])
    workers = [ServerProcess(config, env=env, command="worker") for _ in range(2)]
    try:
        api.wait_ready()
        for worker in workers:
            worker.wait_for_log("running up to")
        client = get_client(url=api.url)
        thread_id = await new_thread(client)
        run = await client.runs.create(thread_id, SLOW, input={}, config=slow(0.8))
        line = f"run {run['run_id']} on thread {thread_id} started (attempt 1)"
        holder = await first_to_log(workers, line)
        await wait_for(lambda: _checkpoints_at_least(client, thread_id, 3), timeout=30)  # a step or two in
        holder.proc.send_signal(signal.SIGKILL)
        other = next(w for w in workers if w is not holder)
        await first_to_log([other], f"run {run['run_id']} on thread {thread_id} started (attempt 2)")
        done = await run_status(client, thread_id, run["run_id"], FINISHED, timeout=60)
        assert done["status"] == "success"
        assert (await client.threads.get_state(thread_id))["values"]["steps"] == STEPS  # no step twice
    finally:
        stop_all([*workers, api])
        drop_database(postgres_server, uri)


async def _checkpoints_at_least(client, thread_id: str, n: int) -> bool:
    return len(await client.threads.get_history(thread_id, limit=100)) >= n


@pytest.mark.parametrize("factory, message", [
    ("missing_delete", "ReadOnlySaver does not implement adelete_thread"),
    ("not_cm", "returned a type, not an async context manager"),
    ("not_saver", "yielded a dict, not a langgraph.checkpoint.base.BaseCheckpointSaver"),
])
def test_a_bad_checkpointer_refuses_to_start(tmp_path, database_uri, factory, message):
    srv = ServerProcess(write_config(tmp_path, factory), env={
        "DATABASE_URI": database_uri, "SQLITE_CHECKPOINTS": str(tmp_path / "c.sqlite"),
    })
    try:
        assert srv.proc.wait(60) != 0
        assert message in srv.output()
    finally:
        srv.stop()
