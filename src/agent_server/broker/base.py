from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager

log = logging.getLogger(__name__)


class Subscription:
    """Messages published on a channel after subscribing, in order, until the broker ends it.

    A deque and at most one waiting future: lighter than an asyncio.Queue, and one is made per run.
    With a `limit`, a reader that falls that many messages behind is ended instead of buffering without
    bound: its backlog is dropped at once, and it reads the end next."""

    def __init__(self, limit: int | None = None) -> None:
        self._items: deque[bytes | None] = deque()
        self._waiter: asyncio.Future | None = None
        self.limit = limit
        self.ended = False
        self.overflowed = False

    def put(self, message: bytes) -> bool:
        """Queue a message; False once the subscription has ended (here by overflowing, or before)."""
        if self.ended:
            return False
        if self.limit is not None and len(self._items) >= self.limit:
            self.overflowed = True
            self._items.clear()
            self.end()
            return False
        self._append(message)
        return True

    def end(self) -> None:
        """Whoever reads this subscription stops (the process is shutting down, or the reader fell behind)."""
        if not self.ended:
            self.ended = True
            self._append(None)

    def _append(self, item: bytes | None) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    @property
    def ready(self) -> bool:
        """A message (or the end) is waiting: get() returns at once."""
        return bool(self._items)

    async def get(self, timeout: float | None = None) -> bytes | None:
        """The next message; None when `timeout` passes first or the subscription has ended."""
        if not self._items and self.ended:
            return None
        if not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:  # not wait_for, which on Python 3.11 can lose a cancellation arriving with a message
                async with asyncio.timeout(timeout):
                    await self._waiter
            except TimeoutError:
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

    @property
    def subscription_count(self) -> int:
        """Open subscriptions of this process, for monitoring (a leak shows as growth)."""
        return sum(map(len, self._subs.values()))

    def _add(self, key: str, sub: Subscription) -> bool:
        """Register a subscription; True when it is the channel's first."""
        first = not self._subs[key]
        self._subs[key].add(sub)
        return first

    def _remove(self, key: str, sub: Subscription) -> bool:
        """Forget a subscription; True when it was the channel's last."""
        subs = self._subs.get(key)
        if subs is None or sub not in subs:
            return False
        subs.discard(sub)
        if subs:
            return False
        del self._subs[key]
        return True

    def _deliver(self, key: str, message: bytes) -> bool:
        """Hand a message to the channel's subscribers; True when this left the channel with none.

        A subscription that has ended is forgotten now, not when its reader gets round to leaving: a slow
        reader may be stuck writing to its client for a long time."""
        subs = self._subs.get(key)
        if not subs:
            return False
        for sub in list(subs):
            if not sub.put(message):
                if sub.overflowed:
                    log.warning("a reader of %s fell %d messages behind: its stream was ended", key, sub.limit)
                self._remove(key, sub)
        return key not in self._subs

    def end_subscriptions(self) -> None:
        """Shutdown: every reader of every subscription of this process stops."""
        for subs in self._subs.values():
            for sub in subs:
                sub.end()

    @abstractmethod
    async def publish(self, channel: str, message: bytes) -> None: ...

    @abstractmethod
    def subscribe(self, channel: str, limit: int | None = None) -> AbstractAsyncContextManager[Subscription]:
        """Subscribed when the context is entered: nothing published after that is missed.

        `limit`: end the subscription when its reader falls that many messages behind (None: never; for
        readers that never fall behind, like the queue's)."""

    async def close(self) -> None:
        pass
