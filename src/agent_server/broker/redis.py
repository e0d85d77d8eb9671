"""Redis pub/sub broker: one publishing connection and one subscriber connection per process."""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..aio import GroupCommit
from ..errors import ConfigError
from .base import Broker, Subscription

log = logging.getLogger(__name__)
PREFIX = "agent_server:"
_ANCHOR = PREFIX + "anchor"  # keeps the subscriber connection subscribed to something at all times


class RedisBroker(Broker):
    def __init__(self, client: aioredis.Redis) -> None:
        super().__init__()
        self.client = client
        self.pubsub = client.pubsub(ignore_subscribe_messages=False)
        self._confirmed: dict[str, asyncio.Event] = {}
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task | None = None
        # published, not yet sent: one task sends them on one connection, in order, a pipeline at a time
        self._outbox: GroupCommit[tuple[str, bytes], None] = GroupCommit(self._send, size=lambda item: len(item[1]))

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
        """Sent by one task on one connection, in order, with what else was published meanwhile in the same round
        trip: a publish per caller would take a connection each, and past the client's pool (100 connections in
        redis-py) fail at once, losing the message for every follower of that stream."""
        try:
            await self._outbox.submit((PREFIX + channel, message))
        except ConnectionError:
            pass  # stopped with the loop: best effort, like every signal here

    async def _send(self, batch: list[tuple[str, bytes]]) -> list[None]:
        try:
            pipe = self.client.pipeline(transaction=False)
            for key, message in batch:
                pipe.publish(key, message)
            await pipe.execute()
        except (RedisError, OSError) as exc:
            # Best effort, like every signal here: the truth is in PostgreSQL, and waiters re-check it.
            log.warning("Redis publish of %d message(s) on %s failed: %s", len(batch),
                        ", ".join(sorted({key.removeprefix(PREFIX) for key, _ in batch})[:3]), exc)
        return [None] * len(batch)

    @asynccontextmanager
    async def subscribe(self, channel: str, limit: int | None = None):
        sub = Subscription(limit)
        key = PREFIX + channel
        try:
            async with self._lock:
                if self._add(key, sub):
                    self._confirmed[key] = asyncio.Event()
                    try:
                        await self.pubsub.subscribe(key)
                    except (RedisError, OSError) as exc:  # the reader subscribes it again on reconnect
                        log.warning("Redis subscribe to %s failed: %s", channel, exc)
                        self._confirmed[key].set()
                confirmed = self._confirmed[key]
            try:  # from confirmation on, nothing published is missed
                await asyncio.wait_for(confirmed.wait(), 5)
            except asyncio.TimeoutError:
                log.warning("Redis did not confirm the subscription to %s", channel)
            yield sub
        finally:
            if self._remove(key, sub):
                # shielded: a reader cancelled on its way out (a client gone) must still let Redis go
                await asyncio.shield(self._unsubscribe_unused(key))

    async def _unsubscribe_unused(self, key: str) -> None:
        """Unsubscribe a channel left without subscribers, unless one has come since."""
        async with self._lock:
            if key in self._subs:
                return
            self._confirmed.pop(key, None)
            try:
                await self.pubsub.unsubscribe(key)
            except (RedisError, OSError):
                pass  # the connection is gone, and its subscriptions with it

    async def _read(self) -> None:
        backoff = 0.1
        while True:
            try:
                if backoff > 0.1:  # reconnected: subscribe what failed while Redis was away
                    missing = set(self._subs) - {c.decode() if isinstance(c, bytes) else c for c in self.pubsub.channels}
                    if missing:
                        await self.pubsub.subscribe(*missing)
                message = await self.pubsub.get_message(timeout=5.0)
                if backoff > 0.1:
                    log.info("Redis subscriber connection restored")
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
            elif message["type"] == "message" and self._deliver(channel, message["data"]):
                await self._unsubscribe_unused(channel)  # its last reader fell behind and was ended

    async def close(self) -> None:
        await self._outbox.flush()  # what was published is sent
        if self._reader:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        try:
            await self.pubsub.aclose()
        finally:
            await self.client.aclose()
