from __future__ import annotations

from contextlib import asynccontextmanager

from .base import Broker, Subscription


class MemoryBroker(Broker):
    """For one process: the API and its queue worker share this object."""

    def __init__(self) -> None:
        super().__init__()

    async def publish(self, channel: str, message: bytes) -> None:
        for sub in self._subs.get(channel, ()):
            sub.put(message)

    @asynccontextmanager
    async def subscribe(self, channel: str):
        sub = Subscription()
        self._subs[channel].add(sub)
        try:
            yield sub
        finally:
            subs = self._subs.get(channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[channel]
