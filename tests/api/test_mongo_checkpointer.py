"""The MongoDB checkpointer backend (LS_DEFAULT_CHECKPOINTER_BACKEND=mongo, LS_MONGODB_URI): runs when a MongoDB
replica set is reachable at MONGODB_URI (with the database name in its path, e.g.
mongodb://127.0.0.1:27017/agent_server_test?replicaSet=rs0), and is reported as skipped when it is not."""
from __future__ import annotations

import contextlib
import os

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import UnprocessableEntityError

from agent_server.errors import ConfigError
from agent_server.persistence import mongo_saver
from conftest import ServerProcess
from run_helpers import new_thread

MONGODB_URI = os.environ.get("MONGODB_URI")
needs_mongo = pytest.mark.skipif(not MONGODB_URI, reason="no MongoDB replica set: set MONGODB_URI to run")


async def test_a_uri_without_a_database_is_refused():
    pytest.importorskip("langgraph.checkpoint.mongodb")
    with pytest.raises(ConfigError, match="must name the database in its path"):
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(mongo_saver("mongodb://127.0.0.1:1/?replicaSet=rs0"))


@needs_mongo
async def test_runs_resume_copy_prune_and_storage_on_mongodb(database_uri):
    srv = ServerProcess(env={
        "DATABASE_URI": database_uri, "LS_DEFAULT_CHECKPOINTER_BACKEND": "mongo", "LS_MONGODB_URI": MONGODB_URI,
    })
    try:
        srv.wait_ready()
        info = httpx.get(f"{srv.url}/info").json()["persistence"]["checkpointer"]
        assert info["backend"] == "mongo" and info["class"] == "MongoDBSaver"
        client = get_client(url=srv.url)
        thread_id = await new_thread(client)
        await client.runs.wait(thread_id, "interrupt", input={"topic": "mongo"})
        assert (await client.threads.get_state(thread_id))["next"] == ["review"]
        copy = await client.threads.copy(thread_id)
        assert (await client.runs.wait(copy["thread_id"], "interrupt", command={"resume": True}))["final"] == "draft about mongo"
        report = httpx.get(f"{srv.url}/threads/{thread_id}/storage").json()
        assert report["checkpoints"]["count"] >= 3
        await client.threads.prune([thread_id], strategy="keep_latest")
        assert len(await client.threads.get_history(thread_id)) == 1
        assert (await client.runs.wait(thread_id, "interrupt", command={"resume": False}))["final"] == "rejected"
        with pytest.raises(UnprocessableEntityError):
            await client.runs.create(thread_id, "echo", input={}, multitask_strategy="rollback")
        await client.threads.delete(thread_id)
    finally:
        srv.stop()
