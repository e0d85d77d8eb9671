"""Group commit: what many tasks hand in while a write is in flight goes to PostgreSQL together, in the next
statement. Under load that is one round trip (and one commit) for many callers instead of one each; alone, a
caller's item goes at once, as it would have."""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Generic, Sequence, TypeVar

import psycopg

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """`store(items)` writes a group in one statement and gives each item's result in order (an exception in
    its place fails that item's caller alone); raising fails the whole group. One statement in flight at a
    time, so groups commit in the order their items came (a second one in flight measured no faster)."""

    def __init__(self, store: Callable[[list[Item]], Awaitable[Sequence[Result | BaseException]]]) -> None:
        self._store = store
        self._waiting: list[tuple[Item, asyncio.Future]] = []
        self._flying: list[tuple[Item, asyncio.Future]] = []  # the group being written
        self._writer: asyncio.Task | None = None

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._waiting.append((item, done))
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            # not in a caller's task: cancelling one caller stops no one else's write
            self._writer = loop.create_task(self._write())
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            done.add_done_callback(_retrieved)  # nobody awaits it now: no "exception never retrieved"
            raise

    async def flush(self) -> None:
        """Wait until everything handed in so far is written (or has failed): a caller cancelled while its
        item was under way stopped waiting for it, but the write goes on."""
        pending = [done for _, done in (*self._flying, *self._waiting)]
        if pending:
            await asyncio.wait(pending)

    async def _write(self) -> None:
        while self._waiting:
            group = self._flying = self._waiting
            self._waiting = []
            try:
                results = await self._store([item for item, _ in group])
            except BaseException as exc:
                for _, done in group:
                    if not done.done():
                        # the loop stopping (a CancelledError): to the callers, the database went away
                        done.set_exception(exc if isinstance(exc, Exception) else psycopg.OperationalError(
                            "the write was stopped with the server: it may or may not have been made"))
                if not isinstance(exc, Exception):
                    raise
                continue
            finally:
                self._flying = []
            for (_, done), result in zip(group, results):
                if done.done():
                    continue
                if isinstance(result, BaseException):
                    done.set_exception(result)
                else:
                    done.set_result(result)


def _retrieved(done: asyncio.Future) -> None:
    if not done.cancelled():
        done.exception()
