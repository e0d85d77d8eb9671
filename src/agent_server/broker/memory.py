from __future__ import annotations

from contextlib import asynccontextmanager

from .base import Broker, Subscription


class MemoryBroker(Broker):
    """For one process: the API and its queue worker share this object."""

    async def publish(self, channel: str, message: bytes) -> None:
        self._deliver(channel, message)

    @asynccontextmanager
    async def subscribe(self, channel: str, limit: int | None = None):
        sub = Subscription(limit)
        self._add(channel, sub)
        try:
            yield sub
        finally:
            self._remove(channel, sub)
