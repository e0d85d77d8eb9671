"""What the server does with a saver that is not ours (storage/savers.py), on a real one: langgraph-checkpoint-
sqlite's async saver, in memory. Copy, prune and the storage report by their fallbacks through its API; the
capabilities found; a saver missing a required method."""
from __future__ import annotations

import operator
from typing import Annotated, TypedDict
from uuid import uuid4

import aiosqlite
import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt

from agent_server.errors import Invalid
from agent_server.storage import savers
from agent_server.storage.savers import SaverCheckpointOps, SqlCheckpointOps, missing_methods, thread_config
from persistence.sqlite_saver import ReadOnlySaver


class State(TypedDict, total=False):
    steps: Annotated[list[str], operator.add]


def _graph(saver):
    def ask(state):
        return {"steps": [f"answer {interrupt('go on?')}"]}

    return (
        StateGraph(State)
        .add_node("one", lambda s: {"steps": ["one"]})
        .add_node("two", lambda s: {"steps": ["two"]})
        .add_node("ask", ask)
        .add_edge(START, "one").add_edge("one", "two").add_edge("two", "ask")
        .compile(checkpointer=saver)
    )


@pytest.fixture
async def saver():
    async with aiosqlite.connect(":memory:") as conn:
        s = AsyncSqliteSaver(conn)
        await s.setup()
        yield s


async def _thread(saver) -> str:
    """A thread paused at an interrupt: several checkpoints, and pending writes (the interrupt)."""
    thread_id = str(uuid4())
    await _graph(saver).ainvoke({"steps": []}, {"configurable": {"thread_id": thread_id}})
    return thread_id


async def test_capabilities_of_a_saver_with_only_the_required_methods(saver):
    ops = SaverCheckpointOps(saver)
    assert ops.capabilities == {
        "rollback": False, "copy": "reinsert", "prune": "reinsert", "storage_report": "estimate",
        "orphan_collection": False,
    }
    with pytest.raises(Invalid, match="AsyncSqliteSaver cannot delete the checkpoints of given runs"):
        ops.require_rollback("multitask_strategy 'rollback'")
    SqlCheckpointOps().require_rollback("ours can")  # no error
    assert missing_methods(saver) == []
    assert missing_methods(ReadOnlySaver()) == ["adelete_thread"]


async def test_copy_by_reinserting_keeps_the_history_and_the_interrupt(saver):
    old = await _thread(saver)
    new = str(uuid4())
    await SaverCheckpointOps(saver).copy_thread(None, old, new)
    graph = _graph(saver)
    before = [s async for s in graph.aget_state_history(thread_config(old))]
    after = [s async for s in graph.aget_state_history(thread_config(new))]
    assert [s.values for s in after] == [s.values for s in before] and len(after) >= 4
    assert [s.next for s in after] == [s.next for s in before]
    state = await graph.aget_state(thread_config(new))
    assert state.interrupts[0].value == "go on?"
    # the copy resumes on its own; the original is untouched
    done = await graph.ainvoke(Command(resume="yes"), thread_config(new))
    assert done["steps"] == ["one", "two", "answer yes"]
    assert (await graph.aget_state(thread_config(old))).next == ("ask",)


async def test_prune_by_reinserting_keeps_the_latest_checkpoint_only(saver):
    thread_id = await _thread(saver)
    graph = _graph(saver)
    latest = await graph.aget_state(thread_config(thread_id))
    await SaverCheckpointOps(saver).prune([thread_id])
    history = [s async for s in graph.aget_state_history(thread_config(thread_id))]
    assert len(history) == 1
    assert history[0].values == latest.values and history[0].next == ("ask",)
    assert history[0].interrupts[0].value == "go on?"
    done = await graph.ainvoke(Command(resume="ok"), thread_config(thread_id))
    assert done["steps"] == ["one", "two", "answer ok"]


class FlakySaver(AsyncSqliteSaver):
    """Its next `failures` puts fail, as a saver's database away for a moment would make them."""

    failures = 0

    async def aput(self, *args, **kwargs):
        if self.failures:
            self.failures -= 1
            raise OSError("the saver's database is away")
        return await super().aput(*args, **kwargs)


@pytest.mark.parametrize("failures, kept", [(2, True), (9, False)])
async def test_prune_by_reinserting_retries_putting_the_latest_back(monkeypatch, failures, kept):
    """The thread is deleted before its latest checkpoint goes back: a put that fails is tried again rather than
    losing the thread's state; only past the last try does the prune fail (and say so)."""
    monkeypatch.setattr(savers, "PUT_BACK_DELAYS", (0, 0, 0))
    async with aiosqlite.connect(":memory:") as conn:
        saver = FlakySaver(conn)
        await saver.setup()
        thread_id = await _thread(saver)
        latest = await _graph(saver).aget_state(thread_config(thread_id))
        saver.failures = failures
        if kept:
            await SaverCheckpointOps(saver).prune([thread_id])
        else:
            with pytest.raises(OSError, match="away"):
                await SaverCheckpointOps(saver).prune([thread_id])
        history = [s async for s in _graph(saver).aget_state_history(thread_config(thread_id))]
        assert [h.values for h in history] == ([latest.values] if kept else [])


async def test_storage_report_through_the_saver(saver):
    thread_id = await _thread(saver)
    report = await SaverCheckpointOps(saver).usage(None, thread_id)
    history = [s async for s in saver.alist(thread_config(thread_id))]
    assert report["checkpoints"]["count"] == len(history)
    assert report["checkpoints"]["bytes"] > 0
    assert report["channel_values"]["by_channel"]["steps"]["versions"] >= 2
    assert report["pending_writes"]["count"] >= 1  # the interrupt
    assert report["total_bytes"] == sum(report[p]["bytes"] for p in ("checkpoints", "channel_values", "pending_writes"))
    assert (await SaverCheckpointOps(saver).usage(None, uuid4()))["total_bytes"] == 0


async def test_thread_deletes_go_through_the_saver(saver):
    thread_id = await _thread(saver)
    await SaverCheckpointOps(saver).delete_threads(None, [thread_id])
    assert [s async for s in saver.alist(thread_config(thread_id))] == []
