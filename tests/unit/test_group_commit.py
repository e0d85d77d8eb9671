"""storage/group.py: what is handed in while statements are in flight goes together in the next group; each
caller gets its own item's result or error; a write stopped with the loop fails its callers as a database gone."""
from __future__ import annotations

import asyncio
import contextvars

import psycopg
import pytest

from agent_server.storage.group import GroupCommit


class Store:
    """Records each group; holds every write until `release` is set."""

    def __init__(self) -> None:
        self.groups: list[list] = []
        self.release = asyncio.Event()

    async def __call__(self, items: list) -> list:
        self.groups.append(items)
        await self.release.wait()
        return [ValueError(f"bad {i}") if i == "bad" else i * 2 for i in items]


async def test_items_handed_in_while_writes_are_in_flight_go_together_in_the_next_group():
    store = Store()
    group = GroupCommit(store)
    first = [asyncio.create_task(group.submit(i)) for i in (1, 2)]
    while not store.groups:  # both in one group: handed in before the writer ran
        await asyncio.sleep(0)
    rest = [asyncio.create_task(group.submit(i)) for i in (3, 4, "bad")]
    for _ in range(3):
        await asyncio.sleep(0)
    assert store.groups == [[1, 2]]  # one statement in flight: 3, 4 and "bad" wait for it
    store.release.set()
    assert await asyncio.gather(*first) == [2, 4]
    assert await asyncio.gather(*rest[:2]) == [6, 8]
    with pytest.raises(ValueError, match="bad bad"):  # its own error, to its caller alone
        await rest[2]
    assert store.groups == [[1, 2], [3, 4, "bad"]]


async def test_with_more_statements_in_flight_an_item_goes_at_once_while_one_is_under_way():
    store = Store()
    group = GroupCommit(store, in_flight=2)
    first = asyncio.create_task(group.submit(1))
    while not store.groups:
        await asyncio.sleep(0)
    second = asyncio.create_task(group.submit(2))  # does not wait for the first statement
    while len(store.groups) < 2:
        await asyncio.sleep(0)
    rest = [asyncio.create_task(group.submit(i)) for i in (3, 4)]  # two in flight: these wait, together
    for _ in range(3):
        await asyncio.sleep(0)
    assert store.groups == [[1], [2]]
    store.release.set()
    assert await asyncio.gather(first, second, *rest) == [2, 4, 6, 8]
    assert store.groups == [[1], [2], [3, 4]]
    await group.flush()


async def test_a_caller_cancelled_does_not_stop_the_others_write():
    store = Store()
    group = GroupCommit(store)
    leaving, staying = asyncio.create_task(group.submit(1)), asyncio.create_task(group.submit(2))
    await asyncio.sleep(0)
    leaving.cancel()
    store.release.set()
    assert await staying == 4
    assert store.groups == [[1, 2]]


async def test_a_write_stopped_with_the_loop_fails_its_callers_as_a_database_gone():
    store = Store()
    group = GroupCommit(store)
    callers = [asyncio.create_task(group.submit(i)) for i in (1, 2)]
    while not store.groups:  # the write under way
        await asyncio.sleep(0)
    waiting = asyncio.create_task(group.submit(3))  # for the next statement, which will never come
    await asyncio.sleep(0)
    for writer in group._writers:
        writer.cancel()  # what the loop's teardown does to the tasks left
    for caller in (*callers, waiting):
        with pytest.raises(psycopg.OperationalError, match="stopped with the server"):
            await asyncio.wait_for(caller, 1)
    await asyncio.wait_for(group.flush(), 1)  # nothing left to wait for
    assert store.groups == [[1, 2]]


async def test_a_group_stops_at_its_size_limit():
    store = Store()
    store.release.set()
    group = GroupCommit(store, size=lambda item: item, max_size=10)
    assert await asyncio.gather(*(group.submit(i) for i in (4, 4, 4, 20, 1))) == [8, 8, 8, 40, 2]
    # at most 10 a group; an item over it goes on its own
    assert store.groups == [[4, 4], [4], [20], [1]]


async def test_flush_waits_for_a_write_whose_caller_left():
    store = Store()
    group = GroupCommit(store)
    leaving = asyncio.create_task(group.submit(1))
    while not store.groups:
        await asyncio.sleep(0)
    leaving.cancel()
    flushing = asyncio.create_task(group.flush())
    for _ in range(3):
        await asyncio.sleep(0)
    assert leaving.cancelled() and not flushing.done()  # the write goes on, and flush waits for it
    store.release.set()
    await flushing


async def test_the_writer_runs_in_no_callers_context():
    """Its log lines must not carry the first caller's run ids (contextvars)."""
    seen = []
    caller = contextvars.ContextVar("caller", default=None)

    async def store(items):
        seen.append(caller.get())
        return items

    group = GroupCommit(store)
    caller.set("run-1")
    assert await group.submit("x") == "x"
    assert seen == [None]
