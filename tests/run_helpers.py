"""Shared by the run tests: inputs, the slow graph (its id, its steps, its config), polling for a run's status."""
from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

HI = {"messages": [{"role": "user", "content": "hi"}]}
FINISHED = {"success", "error", "interrupted", "timeout"}
SLOW = "slow"  # the slow graph: 5 steps, each `delay` seconds (see slow())
STEPS = [f"step{i}" for i in range(1, 6)]  # what a complete run of the slow graph leaves in its state


def say(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


def slow(delay: float = 0.2) -> dict:
    """Config of the slow graph: 5 steps of `delay` seconds."""
    return {"configurable": {"delay": delay}}


async def new_thread(client) -> str:
    return (await client.threads.create())["thread_id"]


async def wait_for(check, timeout: float = 10, interval: float = 0.05) -> Any:
    """Poll the async `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            assert result, "condition not met in time"
            return result
        await asyncio.sleep(interval)


async def run_status(client, thread_id: str, run_id: str, statuses: set[str], timeout: float = 10) -> dict:
    """The run once its status is one of `statuses`."""

    async def check():
        run = await client.runs.get(thread_id, run_id)
        return run if run["status"] in statuses else None

    return await wait_for(check, timeout)


async def started(client, thread_id: str, run_id: str) -> dict:
    return await run_status(client, thread_id, run_id, {"running"})


async def collect(parts: AsyncIterator) -> list[tuple[str, Any]]:
    return [(part.event, part.data) for part in [p async for p in parts]]
