from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager


class Subscription:
    """Messages published on a channel after subscribing, in order."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    async def get(self, timeout: float | None = None) -> bytes | None:
        """The next message, or None when `timeout` passes first."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        return await self.queue.get()


class Broker(ABC):
    @abstractmethod
    async def publish(self, channel: str, message: bytes) -> None: ...

    @abstractmethod
    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Subscription]:
        """Subscribed when the context is entered: nothing published after that is missed."""

    async def close(self) -> None:
        pass
