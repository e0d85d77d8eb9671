"""Redis pub/sub broker: one publishing client and one subscriber connection per process."""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..errors import ConfigError
from .base import Broker, Subscription

log = logging.getLogger(__name__)
PREFIX = "agent_server:"
_ANCHOR = PREFIX + "anchor"  # keeps the subscriber connection subscribed to something at all times


class RedisBroker(Broker):
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.pubsub = client.pubsub(ignore_subscribe_messages=False)
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._confirmed: dict[str, asyncio.Event] = {}
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task | None = None

    @classmethod
    async def connect(cls, uri: str) -> "RedisBroker":
        client = aioredis.from_url(uri, health_check_interval=10, socket_keepalive=True)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise ConfigError(f"cannot connect to Redis at {uri}: {exc}") from None
        broker = cls(client)
        await broker.pubsub.subscribe(_ANCHOR)
        broker._reader = asyncio.create_task(broker._read(), name="redis-broker-reader")
        return broker

    async def publish(self, channel: str, message: bytes) -> None:
        await self.client.publish(PREFIX + channel, message)

    @asynccontextmanager
    async def subscribe(self, channel: str):
        sub = Subscription()
        key = PREFIX + channel
        async with self._lock:
            first = not self._subs[key]
            self._subs[key].add(sub)
            if first:
                confirmed = self._confirmed[key] = asyncio.Event()
                await self.pubsub.subscribe(key)
        if first:
            await confirmed.wait()  # from here on, nothing published is missed
        else:
            await self._confirmed[key].wait()
        try:
            yield sub
        finally:
            async with self._lock:
                subs = self._subs.get(key)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._subs[key]
                        self._confirmed.pop(key, None)
                        await self.pubsub.unsubscribe(key)

    async def _read(self) -> None:
        backoff = 0.1
        while True:
            try:
                message = await self.pubsub.get_message(timeout=5.0)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarted or unreachable: redis-py resubscribes on reconnect
                log.warning("Redis subscriber connection lost (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if message is None:
                continue
            channel = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
            if message["type"] == "subscribe":
                event = self._confirmed.get(channel)
                if event is not None:
                    event.set()
            elif message["type"] == "message":
                for sub in self._subs.get(channel, ()):
                    sub.queue.put_nowait(message["data"])

    async def close(self) -> None:
        if self._reader:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        try:
            await self.pubsub.aclose()
        finally:
            await self.client.aclose()
