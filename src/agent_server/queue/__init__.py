"""The durable run queue's consumer: claim runs from PostgreSQL, execute them, keep their leases."""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass

from ..broker import CANCEL, WAKE
from ..runtime import Runtime
from ..worker.executor import RunControl, execute

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 2.0  # a safety net only: new runs wake the loop through the broker
MAX_ATTEMPTS = 3  # a run whose worker dies this many times ends in error
RESUMABLE_EVENTS_SECONDS = 600.0  # how long a resumable run's events can be replayed


@dataclass
class _Active:
    task: asyncio.Task
    control: RunControl


class QueueWorker:
    def __init__(self, rt: Runtime, concurrency: int | None = None) -> None:
        self.rt = rt
        self.concurrency = concurrency or rt.settings.n_jobs_per_worker
        self.lease = rt.settings.lease_secs
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.active: dict[uuid.UUID, _Active] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._stopping = False

    async def start(self) -> None:
        swept = await self.rt.runs.sweep_expired(MAX_ATTEMPTS)
        if swept:
            log.warning("requeued %d runs whose worker stopped renewing its lease", len(swept))
        ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._listen(ready), name="queue-listen"),
            asyncio.create_task(self._loop(), name="queue-loop"),
            asyncio.create_task(self._heartbeat(), name="queue-heartbeat"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._on_core_task_done)
        await ready.wait()

    async def stop(self, drain_seconds: float = 0) -> None:
        """Stop claiming; give active runs `drain_seconds`, then hand the rest back to the queue."""
        self._stopping = True
        self._wake.set()
        if self.active and drain_seconds:
            await asyncio.wait([a.task for a in self.active.values()], timeout=drain_seconds)
        for run_id in list(self.active):
            self.cancel(run_id, "release")
        if self.active:
            await asyncio.wait([a.task for a in self.active.values()], timeout=10)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def cancel(self, run_id: uuid.UUID, action: str) -> bool:
        """Stop a run this worker executes; not once it is recording its outcome."""
        active = self.active.get(run_id)
        if active is None or active.task.done() or active.control.finishing:
            return False
        active.control.reason = action
        active.task.cancel()
        return True

    def _on_core_task_done(self, task: asyncio.Task) -> None:
        if not self._stopping and not task.cancelled():
            log.critical("queue task %s stopped: %r; this worker no longer works", task.get_name(), task.exception())

    async def _listen(self, ready: asyncio.Event) -> None:
        broker = self.rt.broker
        async with broker.subscribe(WAKE) as wakes, broker.subscribe(CANCEL) as cancels:
            ready.set()

            async def on_wake():
                async for _ in wakes:
                    self._wake.set()

            async def on_cancel():
                async for message in cancels:
                    try:
                        run_id, _, action = message.decode().partition(" ")
                        self.cancel(uuid.UUID(run_id), action or "interrupt")
                    except ValueError:
                        log.warning("ignored a malformed cancel message: %r", message[:100])

            await asyncio.gather(on_wake(), on_cancel())

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self._claim_and_wait()
            except Exception:
                log.exception("the queue loop failed; retrying in 1s")
                await asyncio.sleep(1)

    async def _claim_and_wait(self) -> None:
        self._wake.clear()  # before claiming: a wake-up during the claim must not be lost
        free = self.concurrency - len(self.active)
        claimed = await self.rt.runs.claim(self.worker_id, free, self.lease) if free > 0 else []
        for run in claimed:
            log.info("run %s on thread %s started (attempt %s)", run["run_id"], run["thread_id"], run["attempt"])
            control = RunControl()
            task = asyncio.create_task(execute(self.rt, run, control), name=f"run-{run['run_id']}")
            self.active[run["run_id"]] = _Active(task, control)
            task.add_done_callback(self._on_done(run["run_id"]))
        if claimed and len(claimed) == free:
            return  # maybe more waiting
        timeout = IDLE_POLL_SECONDS
        if not claimed:  # idle: sleep until the next delayed run is due, at the latest
            delay = await self.rt.runs.next_available_in()
            if delay is not None:
                timeout = min(timeout, delay + 0.01)
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def _on_done(self, run_id: uuid.UUID):
        def done(task: asyncio.Task) -> None:
            self.active.pop(run_id, None)
            if not task.cancelled() and task.exception() is not None:
                log.error("run %s crashed in the worker", run_id, exc_info=task.exception())
            self._wake.set()  # a slot is free; and a run waiting on this thread can start

        return done

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 6)
            try:
                await self._renew_leases()
                await self._maintain()
            except Exception:
                log.exception("heartbeat failed")

    async def _renew_leases(self) -> None:
        """Keep our runs; stop those whose lease we lost, or that someone asked to cancel."""
        sent = list(self.active)
        if not sent:
            return
        held = await self.rt.runs.heartbeat(self.worker_id, sent, self.lease)
        for run_id in sent:  # not runs claimed during the round trip: their leases are fresh
            if run_id not in held:
                if self.cancel(run_id, "release"):
                    log.warning("run %s: lease lost, stopping it", run_id)
            elif held[run_id]:
                self.cancel(run_id, held[run_id])

    async def _maintain(self) -> None:
        """Housekeeping any worker may do: requeue runs of dead workers, drop expired data."""
        swept = await self.rt.runs.sweep_expired(MAX_ATTEMPTS)
        if swept:
            log.warning("requeued runs %s whose worker stopped renewing its lease", swept)
            self._wake.set()
        await self.rt.events.prune(RESUMABLE_EVENTS_SECONDS)
        expired = await self.rt.threads.delete_expired()
        if expired:
            log.info("deleted %d threads past their TTL", len(expired))
