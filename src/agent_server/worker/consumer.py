"""The durable run queue's consumer: claim runs from PostgreSQL, execute them, keep their leases."""
from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass

from .. import observability
from ..aio import wait_set
from ..broker import CANCEL, DONE, WAKE, WATCH, WEBHOOKS_DUE, pack, run_channel
from ..runtime import Runtime
from ..serde import dumps
from ..services.store import sweep_expired
from ..services.crons import fire_due
from ..services.threads import expire_threads
from ..status import CANCEL_ACTIONS
from ..storage.runs import NewRun
from ..storage.webhooks import WebhookRepo
from ..webhooks.delivery import Deliverer
from .executor import RunControl, execute

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 2.0  # a safety net only: new runs wake the loop through the broker
STOP_SECONDS = 10.0  # how long the queue's own tasks get to stop once cancelled
RESUMABLE_EVENTS_SECONDS = 600.0  # how long a resumable run's events can be replayed
THREAD_EVENTS_SECONDS = 3600.0  # how long thread event streams can replay a run's events
ORPHAN_SWEEP_SECONDS = 600.0  # how often checkpoints left by deleted threads are collected
CRON_RETRY_SECONDS = 1.0  # after a failed round of cron firings (our database down)
STORE_SWEEP_MINUTES = 5.0  # how often expired store items are deleted, unless store.ttl.sweep_interval_minutes
UNSURE_RETRY_SECONDS = 1.0  # between attempts to hand back a run whose creation's answer was lost


@dataclass
class _Active:
    """One execution of a claimed run in this worker."""

    task: asyncio.Task
    control: RunControl
    attempt: int


class QueueWorker:
    def __init__(self, rt: Runtime, concurrency: int | None = None) -> None:
        self.rt = rt
        self.concurrency = concurrency or rt.settings.n_jobs_per_worker
        self.lease = rt.settings.lease_secs
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.active: dict[uuid.UUID, _Active] = {}
        # Set when a task the queue cannot work without died: the process must exit (non-zero) so that
        # its supervisor restarts it.
        self.failed = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._stopping = False
        self._reserved = 0  # slots promised to runs being created in this process (reserve / adopt)
        # hand-backs of claims whose creation failed (adopt), by run: those runs are not claimed here meanwhile
        self._handing_back: dict[uuid.UUID, asyncio.Task] = {}
        self._behind = False  # the last claim took all it could: runs may be waiting in the queue
        self._context = contextvars.copy_context()  # runs start from it, not from a request's context (its log ids)
        self._renewed_at = time.monotonic()  # when this worker last renewed its leases
        self._orphans_swept_at = -ORPHAN_SWEEP_SECONDS  # once soon after start, then every ORPHAN_SWEEP_SECONDS
        # Webhooks of ended runs, whichever process ended them: off the runs' path, in a task of its own.
        self.deliverer = Deliverer(
            WebhookRepo(rt.pool), rt.settings.webhooks, disabled=bool(rt.settings.http.get("disable_webhooks"))
        )
        self._done_at: dict[str, float] = {}  # housekeeping steps with an interval of their own: when last done

    async def start(self) -> None:
        observability.track_worker(self)
        await self._sweep()
        self.rt.local_queue = self  # runs created in this process may start here at once (services/runs.py)
        ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._listen(ready), name="queue-listen"),
            asyncio.create_task(self._loop(), name="queue-loop"),
            asyncio.create_task(self._heartbeat(), name="queue-heartbeat"),
            asyncio.create_task(self._housekeeping(), name="queue-housekeeping"),
            asyncio.create_task(self._crons(), name="queue-crons"),
            asyncio.create_task(self.deliverer.run(), name="queue-webhooks"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._on_core_task_done)
        await ready.wait()

    async def stop(self, drain_seconds: float = 0) -> None:
        """Stop claiming; give active runs `drain_seconds` to finish, then hand the rest back to the queue."""
        self._stopping = True
        self.rt.local_queue = None
        self._wake.set()
        if self.active and drain_seconds:
            log.info("draining %d runs for up to %.0fs", len(self.active), drain_seconds)
            await asyncio.wait([a.task for a in self.active.values()], timeout=drain_seconds)
        for run_id in list(self.active):
            if self.cancel(run_id, "release"):
                log.info("run %s handed back to the queue", run_id)
        if self.active:
            await asyncio.wait([a.task for a in self.active.values()], timeout=10)
        for task in self._tasks:
            task.cancel()
        if tasks := [*self._tasks, *self._handing_back.values()]:  # hand-backs under way may finish (no retry now)
            # bounded: a task stuck on its way out (a network call) must not hold the process
            _, stuck = await asyncio.wait(tasks, timeout=STOP_SECONDS)
            for task in stuck:
                log.error("queue task %s did not stop within %.0fs; leaving it", task.get_name(), STOP_SECONDS)
        observability.track_worker(self, running=False)

    def cancel(self, run_id: uuid.UUID, action: str) -> bool:
        """Stop a run this worker executes; not once it is recording its outcome, nor a second time
        (a second cancel would land in the unwinding of the first)."""
        active = self.active.get(run_id)
        if active is None or active.task.done() or active.control.finishing or active.control.reason:
            return False
        active.control.reason = action
        active.task.cancel()
        return True

    def watch(self, run_id: uuid.UUID) -> None:
        """Someone began following the thread of a run this worker executes (it was claimed unfollowed): the run
        logs its events for thread event streams from now on."""
        active = self.active.get(run_id)
        if active is not None:
            active.control.watched = True

    def _on_core_task_done(self, task: asyncio.Task) -> None:
        if self._stopping or task.cancelled():
            return
        log.critical("queue task %s stopped: %r; this process must restart", task.get_name(), task.exception())
        self.failed.set()

    async def _listen(self, ready: asyncio.Event) -> None:
        broker = self.rt.broker
        while not self._stopping:
            # A process shutting down ends every subscription (so that API streams close): subscribe
            # again, the queue keeps working while it drains.
            async with broker.subscribe(WAKE) as wakes, broker.subscribe(CANCEL) as cancels, \
                    broker.subscribe(WATCH) as watches:
                ready.set()

                async def on_wake():
                    async for message in wakes:
                        self._wake.set()
                        if message == WEBHOOKS_DUE:  # a run created elsewhere cancelled pending ones
                            self.deliverer.wake()

                async def on_cancel():
                    async for message in cancels:
                        try:
                            run_id, _, action = message.decode().partition(" ")
                            action = action or "interrupt"
                            if action not in CANCEL_ACTIONS:  # from a newer process, say: not a cancel we know
                                raise ValueError(action)
                            self.cancel(uuid.UUID(run_id), action)
                        except ValueError:
                            log.warning("ignored a malformed cancel message: %r", message[:100])

                async def on_watch():
                    async for message in watches:
                        try:
                            self.watch(uuid.UUID(message.decode()))
                        except ValueError:
                            log.warning("ignored a malformed watch message: %r", message[:100])

                await asyncio.gather(on_wake(), on_cancel(), on_watch())

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self._claim_and_wait()
            except Exception:
                log.exception("the queue loop failed; retrying in 1s")
                await asyncio.sleep(1)

    async def _claim_and_wait(self) -> None:
        self._wake.clear()  # before claiming: a wake-up during the claim must not be lost
        free = self._open_slots()
        claimed, due = [], None
        if free > 0:
            # not the runs executing here, nor those being handed back (a hand-back retried after a lost answer
            # must not match a claim of the same run by this worker: its fence is this worker and attempt 1)
            executing = [*self.active, *self._handing_back]
            claimed, due = await self.rt.queue.claim_next(self.worker_id, free, self.lease, executing)
            self._behind = len(claimed) == free
        for run in claimed:
            await self._start(run)
        if claimed and len(claimed) == free:
            return  # maybe more waiting
        # sleep until woken, or the next delayed run is due
        await wait_set(self._wake, IDLE_POLL_SECONDS if due is None else min(IDLE_POLL_SECONDS, due + 0.01))

    async def _start(self, run: dict, reserved: bool = False, latest=None) -> None:
        """Execute a run this worker claimed (`reserved`: in a slot `reserve` kept for it; `latest`: its thread's
        latest checkpoint, read with the claim)."""
        if self._stopping or (not reserved and self._open_slots() <= 0):
            # stopped during the claim, or its slot went meanwhile to a run created here (reserve): straight back
            # to the queue (a graceful hand-back, not counted as a failure), for the next free slot
            try:
                await self.rt.queue.release(run, unstarted=True)
            except Exception as exc:  # the other runs of the claim still start; this one's lease expires
                log.warning("run %s: could not hand it back (%s); the sweep requeues it when its lease expires",
                            run["run_id"], exc)
            self._wake.set()
            return
        control = RunControl(latest=latest)
        task = asyncio.create_task(self.execute(run, control), name=f"run-{run['run_id']}", context=self._context.copy())
        entry = self.active[run["run_id"]] = _Active(task, control, run["attempt"])
        task.add_done_callback(self._on_done(run, entry))

    def reserve(self) -> dict | None:
        """A slot for a run being created in this process, so that its creation also claims it (one statement,
        no wake-up, no claim query): the lease to claim it with, or None when this worker is full or stopping.
        Every reservation is then given to `adopt`, started or not."""
        if self._stopping or self._behind or self._open_slots() <= 0:
            return None  # full, or others wait in the queue: not ahead of them
        self._reserved += 1
        return {"worker": self.worker_id, "lease": self.lease}

    async def adopt(self, run: dict | None, unsure: NewRun | None = None, latest=None) -> None:
        """Take a reserved slot back: with the run its creation claimed for this worker (then execute it), or None.
        `unsure`: the run of a creation whose answer the database failed to give: it may have been claimed for this
        worker all the same, and nothing here executes it; it is handed back in the background. `latest`: the
        run's thread's latest checkpoint, read with its creation (storage/checkpointer.LatestCheckpoint)."""
        self._reserved -= 1
        if run is not None:
            await self._start(run, reserved=True, latest=latest)
            return
        self._wake.set()  # the slot is free again: runs in the queue may take it
        if unsure is not None:
            self._handing_back[unsure.run_id] = asyncio.create_task(
                self._hand_back_unsure(unsure.run_id, unsure.thread_id), name=f"hand-back-{unsure.run_id}",
                context=self._context.copy())

    async def _hand_back_unsure(self, run_id: uuid.UUID, thread_id: uuid.UUID) -> None:
        """Give back to the queue a run its creation may have claimed for this worker, never executed here,
        retrying while the database is away; past its lease, the sweep requeues it anyway."""
        # a creation claims a run as its attempt 1 (storage/runs.py, create with `start`)
        claim = {"run_id": run_id, "thread_id": thread_id, "lease_owner": self.worker_id, "attempt": 1}
        deadline = time.monotonic() + self.lease
        try:
            while not self._stopping and time.monotonic() < deadline:
                try:
                    status = await self.rt.queue.release(claim, unstarted=True)
                except Exception as exc:
                    log.info("run %s: cannot hand back its unsure claim yet (%s); retrying", run_id, exc)
                    await asyncio.sleep(UNSURE_RETRY_SECONDS)
                    continue
                if status is not None:
                    log.warning("run %s: its creation failed after claiming it; handed back (now %s)", run_id, status)
                    self._wake.set()
                    self.deliverer.wake()  # ended instead (a cancel asked meanwhile): its webhook is due
                return
        finally:
            self._handing_back.pop(run_id, None)

    def free_slots(self) -> int:
        """How many more runs this worker takes now."""
        return self.concurrency - len(self.active)

    def _open_slots(self) -> int:
        """Free slots not promised to a run being created here (reserve)."""
        return self.free_slots() - self._reserved

    def execute(self, run: dict, control: RunControl):
        """The step that executes a claimed run to its end and records it: here, in this process (an
        orchestrator dispatches it to an executor instead: worker/orchestrator.py)."""
        return execute(self.rt, run, control)

    def _on_done(self, run: dict, entry: _Active):
        run_id, webhook = run["run_id"], bool(run["kwargs"].get("webhook"))

        def done(task: asyncio.Task) -> None:
            if self.active.get(run_id) is entry:  # forget only this execution, never a newer one
                del self.active[run_id]
            if not task.cancelled() and task.exception() is not None:
                log.error("run %s crashed in the worker", run_id, exc_info=task.exception())
            self._wake.set()  # a slot is free; and a run waiting on this thread can start
            if webhook:
                self.deliverer.wake()  # it is due (a query per run ended, only for runs that have one)

        return done

    async def _heartbeat(self) -> None:
        await self._every(self.lease / 6, self._renew_leases)

    async def _housekeeping(self) -> None:
        # a task of its own: a slow sweep must never delay the renewal of leases
        await self._every(self.lease / 6, self._maintain)

    async def _crons(self) -> None:
        """Fire due crons, then sleep until the next is due. A task of its own: a firing (a graph to check,
        a thread to lock) must not delay lease renewal nor the sweep."""
        while not self._stopping:
            try:
                wait = await fire_due(self.rt)
            except Exception:
                log.exception("firing crons failed; trying again in %.1fs", CRON_RETRY_SECONDS)
                wait = CRON_RETRY_SECONDS
            await asyncio.sleep(wait)

    @staticmethod
    async def _every(seconds: float, step) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await step()
            except Exception:
                log.exception("%s failed; trying again in %.1fs", step.__name__.strip("_"), seconds)

    async def _renew_leases(self) -> None:
        """Keep our runs; stop those whose lease we lost, or that someone asked to cancel."""
        sent = {run_id: a.attempt for run_id, a in self.active.items()}
        if not sent:
            self._renewed_at = time.monotonic()
            return
        try:  # bounded: a renewal that comes too late is no renewal
            async with asyncio.timeout(self.lease / 3):
                held = await self.rt.queue.heartbeat(self.worker_id, sent, self.lease)
        except Exception:
            self._stop_if_leases_lapsing()
            raise
        self._renewed_at = time.monotonic()
        for run_id, attempt in sent.items():  # not runs claimed during the round trip: their leases are fresh
            if run_id not in held:
                active = self.active.get(run_id)
                if active and active.attempt == attempt and self.cancel(run_id, "release"):
                    log.warning("run %s: lease lost, stopping it", run_id)
                continue
            if held[run_id].cancel:
                self.cancel(run_id, held[run_id].cancel)
            if held[run_id].watched:  # a reader the broker's word missed (or lost): from the next event on
                self.watch(run_id)

    def _stop_if_leases_lapsing(self) -> None:
        """Leases not renewed for most of their length may already be another worker's: stop those runs
        here rather than execute them twice (they resume from their last checkpoint elsewhere)."""
        silent = time.monotonic() - self._renewed_at
        if silent < self.lease * 2 / 3:
            return
        for run_id in list(self.active):
            if self.cancel(run_id, "release"):
                log.warning("run %s: leases not renewed for %.0fs; stopping it here", run_id, silent)

    async def _sweep(self) -> None:
        """Requeue runs of dead workers; end those a cancel was asked of, and tell their followers."""
        swept = await self.rt.queue.sweep()
        if swept.requeued:
            log.warning("requeued runs %s whose worker stopped renewing its lease", swept.requeued)
            self._wake.set()
        for run_id, status, output, action in swept.ended:
            log.warning("run %s lost its worker and ended: %s", run_id, action or status)
            await self.rt.broker.publish(run_channel(run_id), pack(DONE, dumps({"status": status, "output": output})))
        if swept.ended:
            self._wake.set()  # their threads may have runs waiting
            self.deliverer.wake()

    def _due(self, step: str, minutes: float | None) -> bool:
        """Whether a housekeeping step is due (then it counts as done now): every round when `minutes` is None."""
        now = time.monotonic()
        if minutes is not None and step in self._done_at and now - self._done_at[step] < minutes * 60:
            return False
        self._done_at[step] = now
        return True

    async def _maintain(self) -> None:
        """Housekeeping any worker may do: the sweep, expired events and threads, orphan checkpoints."""
        await self._sweep()
        await self.rt.events.prune(RESUMABLE_EVENTS_SECONDS)
        await self.rt.thread_events.prune(THREAD_EVENTS_SECONDS)
        settings = self.rt.settings
        if self._due("threads", settings.thread_ttl.get("sweep_interval_minutes")):
            await expire_threads(self.rt)
        if self._due("store", settings.store_ttl.get("sweep_interval_minutes") or STORE_SWEEP_MINUTES):
            await sweep_expired(self.rt)
        if time.monotonic() - self._orphans_swept_at > ORPHAN_SWEEP_SECONDS:
            self._orphans_swept_at = time.monotonic()
            if deleted := await self.rt.queue.collect_orphan_checkpoints():
                log.info("deleted %d checkpoint rows of threads that no longer exist", deleted)
