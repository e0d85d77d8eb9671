"""The TTL sweep with a checkpointer that is not ours (the SQLite saver through checkpointer.path): an expired
`delete` thread's checkpoints go through the saver's adelete_thread, a `keep_latest` one is pruned by re-inserting
its latest checkpoint. In-process, on a database of this module's own (the sweep acts on every thread of it)."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from uuid import uuid4

import pytest

from agent_server.config import load_settings
from agent_server.runtime import Runtime
from agent_server.services.threads import expire_threads
from agent_server.storage.savers import thread_config
from conftest import create_database, drop_database

TESTS = Path(__file__).resolve().parents[1]
TINY_TTL = 0.001  # minutes


@pytest.fixture
async def rt(tmp_path, postgres_server, monkeypatch):
    monkeypatch.setenv("SQLITE_CHECKPOINTS", str(tmp_path / "checkpoints.sqlite"))
    config = tmp_path / "langgraph.json"
    config.write_text(json.dumps({
        "graphs": {"interrupt": str(TESTS.parent / "examples/graphs/interrupt.py:graph")},
        "checkpointer": {"path": f"{TESTS / 'persistence/sqlite_saver.py'}:checkpointer"},
    }))
    uri = create_database(postgres_server)
    settings = load_settings(config)
    settings.database_uri = uri
    runtime = await Runtime.start(settings)
    yield runtime
    await runtime.close()
    drop_database(postgres_server, uri)


async def _paused_thread(rt, strategy: str) -> str:
    """A thread past its TTL, its graph paused at its interrupt (a few checkpoints)."""
    thread_id = uuid4()
    await rt.threads.create(thread_id, metadata={"graph_id": "interrupt"}, ttl={"strategy": strategy, "ttl": TINY_TTL})
    graph = await rt.graphs.get("interrupt", checkpointer=rt.checkpointer)
    await graph.ainvoke({"topic": "ttl"}, thread_config(thread_id, ""))
    await asyncio.sleep(0.2)  # past its TTL
    return thread_id


async def _history(rt, thread_id) -> list:
    return [t async for t in rt.checkpointer.alist(thread_config(thread_id))]


async def test_expired_threads_are_deleted_or_pruned_through_the_saver(rt):
    gone, kept = await _paused_thread(rt, "delete"), await _paused_thread(rt, "keep_latest")
    latest = (await _history(rt, kept))[0]
    assert len(await _history(rt, gone)) >= 3

    assert await expire_threads(rt) == 2
    assert not await rt.threads.exists(gone) and await _history(rt, gone) == []
    assert await rt.threads.exists(kept)
    [only] = await _history(rt, kept)
    assert only.checkpoint["channel_values"] == latest.checkpoint["channel_values"]
    assert only.pending_writes == latest.pending_writes  # the interrupt still waits
