"""One behaviour, every broker: the same tests run against the in-process and the Redis broker."""
from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest

from agent_server.broker import MemoryBroker
from agent_server.broker.redis import RedisBroker


@pytest.fixture(params=["memory", "redis"])
async def broker(request):
    if request.param == "memory":
        b = MemoryBroker()
    else:
        b = await RedisBroker.connect(request.getfixturevalue("redis_uri"))
    yield b
    await b.close()


def channel() -> str:
    return f"test:{uuid.uuid4()}"


async def test_subscriber_receives_messages_published_after_subscribing_in_order(broker):
    ch = channel()
    async with broker.subscribe(ch) as sub:
        for i in range(20):
            await broker.publish(ch, f"m{i}".encode())
        got = [await sub.get(timeout=5) for _ in range(20)]
    assert got == [f"m{i}".encode() for i in range(20)]


async def test_every_subscriber_of_a_channel_gets_each_message(broker):
    ch = channel()
    async with broker.subscribe(ch) as a, broker.subscribe(ch) as b:
        await broker.publish(ch, b"hello")
        assert await a.get(timeout=5) == b"hello"
        assert await b.get(timeout=5) == b"hello"


async def test_messages_of_other_channels_are_not_delivered(broker):
    ch, other = channel(), channel()
    async with broker.subscribe(ch) as sub:
        await broker.publish(other, b"not for you")
        await broker.publish(ch, b"for you")
        assert await sub.get(timeout=5) == b"for you"
        assert await sub.get(timeout=0.2) is None


async def test_a_closed_subscription_stops_receiving(broker):
    ch = channel()
    async with broker.subscribe(ch) as sub:
        pass
    await broker.publish(ch, b"late")
    assert await sub.get(timeout=0.2) is None


async def test_messages_cross_broker_instances_through_redis(redis_uri):
    """Two processes in production: here two brokers, each with its own connections."""
    a, b = await RedisBroker.connect(redis_uri), await RedisBroker.connect(redis_uri)
    try:
        ch = channel()
        async with b.subscribe(ch) as sub:
            await a.publish(ch, b"across")
            assert await asyncio.wait_for(sub.get(), 5) == b"across"
    finally:
        await a.close()
        await b.close()


async def test_a_reader_that_falls_behind_its_limit_is_ended_and_let_go_of_at_once(broker):
    ch = channel()
    async with broker.subscribe(ch, limit=10) as slow, broker.subscribe(ch) as unbounded:
        for i in range(25):
            await broker.publish(ch, f"m{i}".encode())
        got = [await unbounded.get(timeout=5) for _ in range(25)]  # every message has been delivered
        assert got == [f"m{i}".encode() for i in range(25)]
        # The slow one holds no backlog: it reads its end, and the broker no longer counts it.
        assert slow.overflowed and await slow.get(timeout=1) is None
        assert [m async for m in slow] == []
        assert broker.subscription_count == 1
    assert broker.subscription_count == 0


async def test_the_last_reader_of_a_channel_falling_behind_unsubscribes_it_from_redis(redis_uri):
    import redis.asyncio as aioredis

    broker, admin = await RedisBroker.connect(redis_uri), aioredis.from_url(redis_uri)
    ch = channel()
    key = f"agent_server:{ch}"
    try:
        async with broker.subscribe(ch, limit=5) as sub:
            assert (await admin.pubsub_numsub(key))[0][1] == 1
            for i in range(20):
                await broker.publish(ch, b"x")
            assert await sub.get(timeout=5) is None and sub.overflowed
            for _ in range(100):  # the reader task unsubscribes; wait for Redis to say so
                if (await admin.pubsub_numsub(key))[0][1] == 0:
                    break
                await asyncio.sleep(0.05)
            assert (await admin.pubsub_numsub(key))[0][1] == 0
            assert broker.subscription_count == 0
    finally:
        await broker.close()
        await admin.aclose()


async def test_without_a_limit_a_subscription_keeps_everything(broker):
    """The queue's own subscriptions (wake-ups, cancels): never ended for being behind."""
    ch = channel()
    async with broker.subscribe(ch) as sub:
        for i in range(20_000):
            await broker.publish(ch, b"%d" % i)
        last = None
        for _ in range(20_000):
            last = await sub.get(timeout=5)
        assert last == b"19999" and not sub.ended


async def test_many_publishers_at_once_lose_nothing_and_keep_each_channels_order(broker):
    """Hundreds of runs publishing at the same moment (more than a Redis client's pool of connections, 100 by
    default in redis-py): every message arrives, each channel's in the order published."""
    channels = [channel() for _ in range(50)]

    async def publisher(ch: str) -> None:
        for i in range(6):
            await broker.publish(ch, f"{ch}:{i}".encode())

    async with contextlib.AsyncExitStack() as stack:
        subs = [await stack.enter_async_context(broker.subscribe(ch)) for ch in channels]
        await asyncio.gather(*(publisher(ch) for ch in channels for _ in range(5)))  # 250 publishers at once
        for ch, sub in zip(channels, subs):
            got = [await sub.get(timeout=5) for _ in range(30)]
            assert sorted(got) == sorted(f"{ch}:{i}".encode() for i in range(6) for _ in range(5))
            # each publisher's own messages in its order: with five per channel, each index comes 5 times in a row
            # at most interleaved, never before an earlier one of the same publisher: checked as counts so far
            counts = [0] * 6
            for message in got:
                i = int(message.rsplit(b":", 1)[1])
                counts[i] += 1
                assert i == 0 or counts[i] <= counts[i - 1]


async def test_a_publish_while_redis_is_away_returns_says_so_and_the_next_ones_go_through(private_redis, caplog):
    broker = await RedisBroker.connect(private_redis.uri)
    try:
        ch = channel()
        private_redis.stop()
        await asyncio.wait_for(broker.publish(ch, b"lost"), 30)  # best effort: no exception to the publisher
        assert f"Redis publish of 1 message(s) on {ch} failed" in caplog.text
        private_redis.start()
        async with broker.subscribe(ch) as sub:
            await broker.publish(ch, b"after")
            assert await sub.get(timeout=10) == b"after"
    finally:
        await broker.close()
