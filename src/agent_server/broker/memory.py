from __future__ import annotations

from contextlib import asynccontextmanager

from .base import Broker, Subscription


class MemoryBroker(Broker):
    """For one process: the API and its queue worker share this object."""

    async def publish(self, channel: str, message: bytes) -> None:
        for sub in self._subs.get(channel, ()):
            sub.put(message)

    @asynccontextmanager
    async def subscribe(self, channel: str):
        sub = Subscription()
        self._add(channel, sub)
        try:
            yield sub
        finally:
            self._remove(channel, sub)
