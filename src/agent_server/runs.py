"""Run orchestration for the API: create (queue), cancel, wait for, and follow runs."""
from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from typing import Any, AsyncIterator
from uuid import UUID

from .broker import CANCEL, DONE, WAKE, Subscription, run_channel, unpack
from .runtime import Runtime
from .serde import loads
from .storage.runs import NewRun

log = logging.getLogger(__name__)

FINISHED = ("success", "error", "timeout", "interrupted")
CHECK_SECONDS = 5.0  # how often a waiter double-checks PostgreSQL in case a broker message was lost


async def create_run(rt: Runtime, run_id: UUID, thread_id: UUID | None, assistant_id: UUID, payload: dict) -> dict:
    """Queue a run; `thread_id=None` makes a stateless run on a thread of its own."""
    assistant = await rt.assistants.get(assistant_id)
    stateless = thread_id is None
    kwargs = {k: v for k, v in payload.items() if k not in ("metadata", "multitask_strategy", "after_seconds", "if_not_exists")}
    if stateless:
        kwargs["stateless"] = True
        kwargs["on_completion"] = payload.get("on_completion") or "delete"
    new = NewRun(
        run_id=run_id,
        thread_id=thread_id or run_id,
        assistant_id=assistant_id,
        graph_id=assistant["graph_id"],
        kwargs=kwargs,
        metadata=payload.get("metadata") or {},
        multitask_strategy=payload.get("multitask_strategy") or "enqueue",
        after_seconds=payload.get("after_seconds") or 0,
        if_not_exists=payload.get("if_not_exists") or "reject",
        ephemeral=stateless,
    )
    created = await rt.runs.create(new)
    for cancelled in created.cancelled:
        await rt.broker.publish(CANCEL, f"{cancelled} {new.multitask_strategy}".encode())
    await rt.broker.publish(WAKE, b"")
    return created.run


async def cancel_runs(rt: Runtime, thread_id: UUID | None, run_ids: list[UUID] | None, action: str, status: str | None = None) -> None:
    for run_id in await rt.runs.cancel(thread_id, run_ids, action, status):
        await rt.broker.publish(CANCEL, f"{run_id} {action}".encode())


async def delete_thread(rt: Runtime, thread_id: UUID) -> None:
    await rt.threads.get(thread_id)
    await cancel_runs(rt, thread_id, None, "interrupt")
    await rt.threads.delete(thread_id)
    await rt.checkpointer.adelete_thread(str(thread_id))


class RunFollower:
    """Subscribed to a run's events before the run can produce any: nothing is missed."""

    def __init__(self, rt: Runtime, run_id: UUID) -> None:
        self.rt, self.run_id = rt, run_id
        self._stack = AsyncExitStack()
        self.sub: Subscription | None = None
        self.result: dict | None = None  # {"status", "output"} once the run has ended

    async def __aenter__(self) -> "RunFollower":
        self.sub = await self._stack.enter_async_context(self.rt.broker.subscribe(run_channel(self.run_id)))
        return self

    async def __aexit__(self, *exc) -> None:
        await self._stack.aclose()

    async def _ended_in_db(self) -> bool:
        row = await self.rt.runs.output(self.run_id)
        if row is None or row["status"] in FINISHED:
            self.result = row or {"status": "deleted", "output": None}
            return True
        return False

    async def events(self, check_first: bool = False) -> AsyncIterator[tuple[str, bytes]]:
        """The run's events until it ends; None-named items are heartbeats of an idle stream."""
        if check_first and await self._ended_in_db():
            return
        while True:
            message = await self.sub.get(timeout=CHECK_SECONDS)
            if message is None:
                if await self._ended_in_db():
                    return
                yield "", b""  # idle: let the caller send a heartbeat
                continue
            event, data = unpack(message)
            if event == DONE:
                self.result = loads(data)
                return
            yield event, data

    async def wait(self, check_first: bool = False) -> dict:
        async for _ in self.events(check_first):
            pass
        return self.result


def spawn_cancel(rt: Runtime, run_id: UUID) -> None:
    """Cancel from a context that is itself being torn down (a closed stream)."""
    task = asyncio.create_task(cancel_runs(rt, None, [run_id], "interrupt"))
    _background.add(task)
    task.add_done_callback(_background.discard)



_background: set[asyncio.Task] = set()
