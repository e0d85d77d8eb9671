from __future__ import annotations

import asyncio
from collections import defaultdict
from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager


class Subscription:
    """Messages published on a channel after subscribing, in order, until the broker ends it."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.ended = False

    def end(self) -> None:
        """The process is shutting down: whoever reads this subscription stops."""
        self.ended = True
        self.queue.put_nowait(None)

    async def get(self, timeout: float | None = None) -> bytes | None:
        """The next message; None when `timeout` passes first or the subscription has ended."""
        try:
            return self.queue.get_nowait()  # the common case while a run streams: no timer needed
        except asyncio.QueueEmpty:
            pass
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        message = await self.queue.get()
        if message is None:
            raise StopAsyncIteration
        return message


class Broker(ABC):
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)

    def end_subscriptions(self) -> None:
        """Shutdown: every reader of every subscription of this process stops."""
        for subs in self._subs.values():
            for sub in subs:
                sub.end()

    @abstractmethod
    async def publish(self, channel: str, message: bytes) -> None: ...

    @abstractmethod
    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Subscription]:
        """Subscribed when the context is entered: nothing published after that is missed."""

    async def close(self) -> None:
        pass
