"""One behaviour, every broker: the same tests run against the in-process and the Redis broker."""
from __future__ import annotations

import asyncio
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
