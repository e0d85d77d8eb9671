from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager


class Subscription:
    """Messages published on a channel after subscribing, in order, until the broker ends it.

    A deque and at most one waiting future: lighter than an asyncio.Queue, and one is made per run."""

    def __init__(self) -> None:
        self._items: deque[bytes | None] = deque()
        self._waiter: asyncio.Future | None = None
        self.ended = False

    def put(self, message: bytes | None) -> None:
        self._items.append(message)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def end(self) -> None:
        """The process is shutting down: whoever reads this subscription stops."""
        self.ended = True
        self.put(None)

    async def get(self, timeout: float | None = None) -> bytes | None:
        """The next message; None when `timeout` passes first or the subscription has ended."""
        if not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._waiter, timeout)
            except asyncio.TimeoutError:
                return None
            finally:
                self._waiter = None
        return self._items.popleft()

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        message = await self.get()
        if message is None:
            raise StopAsyncIteration
        return message


class Broker(ABC):
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)

    def _add(self, key: str, sub: Subscription) -> bool:
        """Register a subscription; True when it is the channel's first."""
        first = not self._subs[key]
        self._subs[key].add(sub)
        return first

    def _remove(self, key: str, sub: Subscription) -> bool:
        """Forget a subscription; True when it was the channel's last."""
        subs = self._subs.get(key)
        if subs is None:
            return False
        subs.discard(sub)
        if subs:
            return False
        del self._subs[key]
        return True

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
