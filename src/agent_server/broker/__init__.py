"""Ephemeral signals between API processes and workers: wake-ups, cancellation, run streams.

Nothing durable goes through here; PostgreSQL holds the truth. One interface, two backends:
in-process (single host without Redis) and Redis (any number of processes)."""
from __future__ import annotations

import json

from .base import Broker, Subscription
from .memory import MemoryBroker

WAKE = "wake"  # a run was enqueued: idle workers should claim
WEBHOOKS_DUE = b"webhooks"  # a WAKE payload: runs it cancelled have webhooks to deliver too
CANCEL = "cancel"  # payload: b"<run_id> <action>"
WATCH = "watch"  # payload: b"<run_id>": someone began following the run's thread, it logs its events from now on


def run_channel(run_id) -> str:
    return f"run:{run_id}"


def thread_channel(thread_id) -> str:
    """Where a worker says which run of the thread it has just started, and the API that the thread's state
    was updated: messages of `thread_message`."""
    return f"thread:{thread_id}"


def thread_events_channel(thread_id) -> str:
    """Where a worker announces each event it adds to the thread's event log (storage/thread_events.py),
    as `pack("event", the event's JSON, its seq)`."""
    return f"thread-events:{thread_id}"


RUN_STARTED = "run_started"  # payload: {"run_id", "attempt"}
STATE_UPDATED = "state_updated"  # payload: {"checkpoint": the new checkpoint's configurable}


def thread_message(kind: str, payload: dict) -> bytes:
    return pack(kind, json.dumps(payload).encode())


def read_thread_message(message: bytes) -> tuple[str, dict]:
    kind, _, data = unpack(message)
    return kind, json.loads(data)


async def open_broker(redis_uri: str | None) -> Broker:
    if not redis_uri:
        return MemoryBroker()
    from .redis import RedisBroker

    return await RedisBroker.connect(redis_uri)


__all__ = ["Broker", "Subscription", "MemoryBroker", "open_broker", "run_channel", "thread_channel", "WAKE", "WEBHOOKS_DUE", "CANCEL", "WATCH",
    "RUN_STARTED", "STATE_UPDATED", "thread_message", "read_thread_message", "thread_events_channel"]


def pack(event: str, data: bytes, event_id: str = "") -> bytes:
    """One stream event as it travels from worker to API: name, id (resumable runs only), payload."""
    return f"{event}\n{event_id}\n".encode() + data


def unpack(message: bytes) -> tuple[str, str, bytes]:
    event, event_id, data = message.split(b"\n", 2)
    return event.decode(), event_id.decode(), data


DONE = "__done__"  # internal: the run has ended and its final state is in PostgreSQL
