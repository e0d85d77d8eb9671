"""Our checkpoint saver (storage/checkpointer.py) is a drop-in for langgraph's AsyncPostgresSaver: the
langgraph-checkpoint-conformance suite passes on it, and it reads and writes the same rows as the stock
saver on the same tables (a database written by either keeps working with the other)."""
from __future__ import annotations

import asyncio
import secrets
import uuid

import psycopg
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import ERROR, INTERRUPT, empty_checkpoint
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from agent_server.storage.checkpointer import PooledPostgresSaver, is_storage_error
from agent_server.storage.database import migrate, open_pool


@pytest.fixture
async def pool(database_uri):
    pool = await open_pool(database_uri, max_size=4)
    await migrate(pool)
    try:
        yield pool
    finally:
        await pool.close()


async def test_the_conformance_suite_passes_on_our_saver(pool):
    @checkpointer_test(name="PooledPostgresSaver")
    async def ours():
        yield PooledPostgresSaver(pool)

    report = await validate(ours)
    report.print_report()
    failures = {name: r.failures for name, r in report.results.items() if r.failures}
    assert report.passed_all_base() and report.passed_all(), failures
    assert {"put", "put_writes", "get_tuple", "list", "delete_thread", "prune"} <= set(report.results)


def _checkpoint(messages: list, previous=None) -> dict:
    checkpoint = empty_checkpoint()
    version = str(len(messages))
    checkpoint["channel_values"] = {"messages": messages, "count": len(messages), "label": None}
    checkpoint["channel_versions"] = {"messages": version, "count": version, "label": version}
    return checkpoint


async def test_each_saver_reads_what_the_other_wrote(pool):
    """Same tables, same rows: a checkpoint chain with message blobs, inline values and pending writes."""
    ours, stock = PooledPostgresSaver(pool), AsyncPostgresSaver(pool)
    for writer, reader in ((ours, stock), (stock, ours)):
        config = {"configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": ""}}
        history = [HumanMessage("hi", id="1")]
        first = await writer.aput(config, _checkpoint(history), {"source": "input", "step": -1, "n": 1},
                                  {"messages": "1", "count": "1", "label": "1"})
        history = [*history, AIMessage("hello", id="2")]
        second = await writer.aput(first, _checkpoint(history), {"source": "loop", "step": 0},
                                   {"messages": "2", "count": "2"})
        await writer.aput_writes(second, [("messages", [AIMessage("next", id="3")]), ("count", 3)], "task-1")
        await writer.aput_writes(second, [(ERROR, "first"), (INTERRUPT, "stop")], "task-2")

        got = await reader.aget_tuple(config)
        assert got.config == second and got.parent_config == first
        assert got.checkpoint["channel_values"] == {"messages": history, "count": 2, "label": None}
        assert got.metadata == {"source": "loop", "step": 0}
        assert sorted((t, c) for t, c, _ in got.pending_writes) == [
            ("task-1", "count"), ("task-1", "messages"), ("task-2", ERROR), ("task-2", INTERRUPT)]
        listed = [t.checkpoint["channel_values"]["messages"] async for t in reader.alist(config)]
        assert listed == [history, history[:1]]


async def test_special_writes_replace_and_ordinary_writes_are_kept_as_first_written(pool):
    saver = PooledPostgresSaver(pool)
    config = await saver.aput({"configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": ""}},
                              _checkpoint([]), {}, {})
    await saver.aput_writes(config, [("a", 1), ("b", 2)], "t")
    await saver.aput_writes(config, [("a", 10), ("b", 20)], "t")  # a retried task: the first writes stay
    await saver.aput_writes(config, [(ERROR, "one"), (ERROR, "two")], "t")  # the last error wins
    await saver.aput_writes(config, [(ERROR, "three")], "t")
    writes = (await saver.aget_tuple(config)).pending_writes
    assert sorted(writes, key=lambda w: (w[1], str(w[2]))) == [
        ("t", ERROR, "three"), ("t", "a", 1), ("t", "b", 2)]


async def test_calls_made_together_are_one_group_with_the_outcome_of_making_them_in_order(pool):
    """Everything handed in while a statement is in flight goes in the next one (storage/group.py): the same
    checkpoint twice keeps its last version, writes keep the special channels' last and the others' first."""
    saver = PooledPostgresSaver(pool)
    statements = []
    execute = saver._execute
    saver._execute = lambda group: statements.append(len(group)) or execute(group)  # counts them, runs them
    config = {"configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": ""}}
    checkpoint = _checkpoint([HumanMessage("hi", id="1")])
    put = {**config, "configurable": {**config["configurable"], "checkpoint_id": checkpoint["id"]}}
    await asyncio.gather(
        saver.aput(config, checkpoint, {"v": 1}, {"messages": "1"}),
        saver.aput(config, checkpoint, {"v": 2}, {"messages": "1"}),
        saver.aput_writes(put, [("a", 1)], "t"),
        saver.aput_writes(put, [("a", 10), (ERROR, "one")], "t"),
        saver.aput_writes(put, [(ERROR, "two")], "t"),
    )
    assert statements == [5]  # one statement for the five calls (not one each, after it failed)
    got = await saver.aget_tuple(put)
    assert got.metadata == {"v": 2}
    assert got.checkpoint["channel_values"]["messages"] == [HumanMessage("hi", id="1")]
    assert sorted(got.pending_writes, key=lambda w: w[1]) == [("t", ERROR, "two"), ("t", "a", 1)]


async def test_a_write_postgresql_refuses_fails_alone_and_the_rest_of_its_group_is_stored(pool):
    """Runs of one process share a statement; one run's unstorable checkpoint must fail that run only (a NUL in a JSON string: PostgreSQL's jsonb has no place for it)."""
    saver = PooledPostgresSaver(pool)
    configs = [{"configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": ""}} for _ in range(4)]
    checkpoints = [_checkpoint([HumanMessage(f"hi {i}", id="1")]) for i in range(4)]
    checkpoints[1]["channel_values"]["label"] = "bad\x00"  # inline, in the checkpoint's JSON
    results = await asyncio.gather(
        *(saver.aput(c, checkpoint, {"who": "ok"}, {"messages": "1"}) for c, checkpoint in zip(configs, checkpoints)),
        return_exceptions=True,
    )
    assert isinstance(results[1], psycopg.DataError) and not is_storage_error(results[1])
    assert await saver.aget_tuple(configs[1]) is None
    for i in (0, 2, 3):
        got = await saver.aget_tuple(results[i])
        assert got.metadata == {"who": "ok"}
        assert got.checkpoint["channel_values"]["messages"] == [HumanMessage(f"hi {i}", id="1")]


async def test_a_checkpoint_under_way_when_its_run_is_cancelled_lands_before_the_thread_is_deleted(pool, database_uri):
    """A cancelled caller stops waiting for its write, but the write goes on (it shares a statement with
    others): deleting the thread (the worker's cleanup after a cancelled run) must come after it."""
    saver = PooledPostgresSaver(pool)
    config = {"configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": ""}}
    checkpoint = _checkpoint([HumanMessage("hi", id="1")])
    async with await psycopg.AsyncConnection.connect(database_uri) as blocker:
        # the same row inserted and not committed elsewhere: our write waits for that transaction
        await blocker.execute(
            "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, checkpoint, metadata)"
            " VALUES (%s, '', %s, '{}', '{}')", (config["configurable"]["thread_id"], checkpoint["id"]))
        put = asyncio.create_task(saver.aput(config, checkpoint, {}, {"messages": "1"}))
        await asyncio.sleep(0.3)  # the write is under way, held by the lock
        put.cancel()
        deleting = asyncio.create_task(saver.adelete_thread(config["configurable"]["thread_id"]))
        await asyncio.sleep(0.3)
        assert not deleting.done()  # waits for the write under way
        await blocker.rollback()
    await deleting
    assert put.cancelled()
    assert await saver.aget_tuple(config) is None
    assert [c async for c in saver.alist(config)] == []


async def test_a_write_beyond_a_postgresql_limit_fails_alone_too(pool):
    """PostgreSQL's limits (class 54, here a key too large for its index) are OperationalErrors, like a lost
    connection, but one run's write is their cause: the rest of its group is stored."""
    saver = PooledPostgresSaver(pool)
    config = await saver.aput({"configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": ""}},
                              _checkpoint([]), {}, {})
    huge_task = secrets.token_hex(8000)  # random: even compressed, past a btree entry's maximum (~2.7 kB)
    results = await asyncio.gather(
        saver.aput_writes(config, [("a", 1)], "t1"),
        saver.aput_writes(config, [("a", 2)], huge_task),
        saver.aput_writes(config, [("a", 3)], "t3"),
        return_exceptions=True,
    )
    assert isinstance(results[1], psycopg.errors.ProgramLimitExceeded), results
    assert results[0] is None and results[2] is None
    writes = (await saver.aget_tuple(config)).pending_writes
    assert sorted((task, value) for task, _, value in writes) == [("t1", 1), ("t3", 3)]
