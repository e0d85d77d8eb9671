"""Ephemeral signals between API processes and workers: wake-ups, cancellation, run streams.

Nothing durable goes through here; PostgreSQL holds the truth. One interface, two backends:
in-process (single host without Redis) and Redis (any number of processes)."""
from __future__ import annotations

from .base import Broker, Subscription
from .memory import MemoryBroker

WAKE = "wake"  # a run was enqueued: idle workers should claim
CANCEL = "cancel"  # payload: b"<run_id> <action>"


def run_channel(run_id) -> str:
    return f"run:{run_id}"


async def open_broker(redis_uri: str | None) -> Broker:
    if not redis_uri:
        return MemoryBroker()
    from .redis import RedisBroker

    return await RedisBroker.connect(redis_uri)


__all__ = ["Broker", "Subscription", "MemoryBroker", "open_broker", "run_channel", "WAKE", "CANCEL"]


def pack(event: str, data: bytes) -> bytes:
    """One stream event as it travels from worker to API: name, newline, JSON payload."""
    return event.encode() + b"\n" + data


def unpack(message: bytes) -> tuple[str, bytes]:
    event, _, data = message.partition(b"\n")
    return event.decode(), data


DONE = "__done__"  # internal: the run has ended and its final state is in PostgreSQL
