"""asyncio helpers shared by the server's long-running loops."""
from __future__ import annotations

import asyncio
import contextvars
from typing import Awaitable, Callable, Generic, Sequence, TypeVar


async def wait_set(event: asyncio.Event, timeout: float) -> bool:
    """Wait for `event` at most `timeout` seconds; whether it was set. asyncio.timeout, not wait_for: on
    Python 3.11 wait_for can swallow a cancellation that arrives as the wait ends (a stop would be lost)."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
        return True
    except TimeoutError:
        return False


# Group commit: what many tasks hand in while a write is in flight goes out together, in the next write (a
# PostgreSQL statement, a Redis pipeline). Under load that is one round trip (and one commit) for many callers
# instead of one each; alone, a caller's item goes at once, as it would have.
Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """`store(items)` writes a group in one round trip and gives each item's result in order (an exception in
    its place fails that item's caller alone); raising fails the whole group. At most `in_flight` writes at a
    time; with one (the default), groups go in the order their items came (for the checkpoint saver, a second
    one in flight measured no faster).

    `size(item)`: its bytes, roughly; a group stops at `max_size` (at least one item), so that runs with large
    states do not make one statement PostgreSQL refuses (a parameter of 1 GB) for all of them."""

    def __init__(self, store: Callable[[list[Item]], Awaitable[Sequence[Result | BaseException]]],
                 size: Callable[[Item], int] = lambda item: 0, max_size: int = 16 * 2**20, in_flight: int = 1) -> None:
        self._store, self._size, self._max_size, self._in_flight = store, size, max_size, in_flight
        self._waiting: list[tuple[Item, asyncio.Future]] = []
        self._flying: list[list[tuple[Item, asyncio.Future]]] = []  # the groups being written
        self._writers: set[asyncio.Task] = set()

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        if any(writer.get_loop() is not loop for writer in self._writers):
            # writers of another event loop (gone: tests, a restarted loop): their waiting items are their own
            self._waiting = [(i, d) for i, d in self._waiting if d.get_loop() is loop]
            self._writers = set()
        self._waiting.append((item, done))
        # done() rather than a done-callback: a writer that has just left its loop is done at once, its callbacks
        # only a loop turn later, and an item handed in between would wait for a writer that never comes
        self._writers = {writer for writer in self._writers if not writer.done()}
        if len(self._writers) < self._in_flight:
            # not in a caller's task (cancelling one caller stops no one else's write), nor in its context
            # (the writer's log lines are no run's)
            self._writers.add(loop.create_task(self._write(), context=contextvars.Context()))
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            done.add_done_callback(_retrieved)  # nobody awaits it now: no "exception never retrieved"
            raise

    async def flush(self) -> None:
        """Wait until everything handed in so far is written (or has failed): a caller cancelled while its
        item was under way stopped waiting for it, but the write goes on."""
        pending = [done for _, done in (*(entry for group in self._flying for entry in group), *self._waiting)]
        if pending:
            await asyncio.wait(pending)

    @staticmethod
    def stopped() -> BaseException:
        """What the callers whose items were under way, or waiting, get when the loop stops the writer."""
        return ConnectionError("the write was stopped with the server: it may or may not have been made")

    def _next_group(self) -> list[tuple[Item, asyncio.Future]]:
        total, n = 0, 0
        for item, _ in self._waiting:
            total += self._size(item)
            if n and total > self._max_size:
                break
            n += 1
        group, self._waiting = self._waiting[:n], self._waiting[n:]
        return group

    async def _write(self) -> None:
        while self._waiting:
            group = self._next_group()
            self._flying.append(group)
            try:
                results = await self._store([item for item, _ in group])
            except Exception as exc:
                _fail(group, lambda exc=exc: exc)
                continue
            except BaseException:
                # the loop stopping (a CancelledError): every caller gets stopped(), those still waiting too (no
                # writer is left for them)
                _fail(group + self._waiting, self.stopped)
                self._waiting = []
                raise
            finally:
                self._flying = [flying for flying in self._flying if flying is not group]
            for (_, done), result in zip(group, results):
                if done.done():
                    continue
                if isinstance(result, BaseException):
                    done.set_exception(result)
                else:
                    done.set_result(result)


def _fail(entries: list[tuple[Item, asyncio.Future]], error: Callable[[], BaseException]) -> None:
    for _, done in entries:
        if not done.done():
            done.set_exception(error())


def _retrieved(done: asyncio.Future) -> None:
    if not done.cancelled():
        done.exception()
