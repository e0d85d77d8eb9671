"""`agent-server orchestrator`: the queue worker of distributed mode, without graph code.

It claims runs, holds and renews their leases, handles cancellation, sweeps, fires crons and delivers webhooks
exactly as QueueWorker does (it is one); only the step that executes a claimed run differs: the run goes to the
least busy executor over gRPC (worker/wire.py), its events come back and are published here, and its ending is
recorded here, fenced by this orchestrator's lease. An executor that dies or stops answering heartbeats has its
runs handed back to the queue (counted as a failure, as a lost worker's are); they resume from their last
checkpoint on another executor."""
from __future__ import annotations

import asyncio
import logging
import socket
import sys
import time

import grpc

from ..broker import unpack
from ..observability import observe_run
from ..runtime import Runtime
from ..serde import dumps, loads
from . import wire
from .consumer import QueueWorker
from .executor import Emitter, Ending, RunControl, record

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 0.5  # how often each executor is asked how it stands


class ExecutorLink:
    """One executor as an orchestrator sees it: its slots and the runs dispatched to it. Alive while it answers
    heartbeats; silent for `timeout` seconds, it is lost: the calls of its runs are cancelled."""

    def __init__(self, address: str, shared_secret: str, timeout: float, on_change) -> None:
        self.address, self.timeout, self.on_change = address, timeout, on_change
        self.metadata = wire.metadata(shared_secret)
        self.channel = wire.channel(address)
        self.execute = self.channel.stream_stream(wire.EXECUTE)
        self.status = self.channel.unary_unary(wire.STATUS)
        self.slots = self.reported_busy = 0
        self.alive = False
        self.answered_at = time.monotonic()
        self.calls: dict = {}  # run id -> its Execute call (None until the call is made)

    @property
    def busy(self) -> int:
        # what this orchestrator sent, or what the executor says it runs (other orchestrators' runs too)
        return max(len(self.calls), self.reported_busy)

    @property
    def free(self) -> int:
        return self.slots - self.busy if self.alive else 0

    async def watch(self) -> None:
        while True:
            try:
                reply = loads(await self.status(b"", metadata=self.metadata, timeout=max(1.0, self.timeout / 2)))
                self.slots, self.reported_busy, self.answered_at = reply["slots"], reply["busy"], time.monotonic()
                if not self.alive:
                    self.alive = True
                    log.info("executor %s (%s) up with %d slots", self.address, reply["executor_id"], self.slots)
                    self.on_change()
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                    log.error("executor %s refuses our secret", self.address)
                self.alive = False  # no new runs until it answers again
                if self.calls and time.monotonic() - self.answered_at > self.timeout:
                    log.warning("executor %s lost (%s); handing its %d runs back", self.address, exc.code().name, len(self.calls))
                    for call in list(self.calls.values()):
                        if call is not None:
                            call.cancel()
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def run(self, run: dict, emit: Emitter, control: RunControl) -> Ending | None:
        """Execute the run there, publishing its events here; how it ended, None when the executor was lost."""
        task = asyncio.current_task()
        call = self.calls[run["run_id"]] = self.execute(metadata=self.metadata)
        try:
            # announced as it is dispatched, not when the executor begins: as a local execution does, before a
            # client that saw the run running could join its stream (it would see the metadata event otherwise)
            await _to_the_end(emit.started())
            await _to_the_end(call.write(dumps({"run": run})))
            if control.reason:  # cancelled meanwhile
                await call.write(dumps({"cancel": control.reason}))
            reading = None
            while True:
                try:
                    # shielded: a cancel of this task must not cancel the call (grpc does so to an interrupted read)
                    reading = reading or asyncio.ensure_future(call.read())
                    message = await asyncio.shield(reading)
                    reading = None
                    if message is grpc.aio.EOF:
                        return None
                    event, _, data = unpack(message)
                    if event == wire.ENDING:
                        control.finishing = True
                        return Ending(**loads(data))
                    await emit(event, data)
                except asyncio.CancelledError:
                    if task.cancelling() == 0 or (reading is not None and reading.cancelled()):
                        return None  # the call was cancelled: the executor was lost
                    task.uncancel()  # QueueWorker.cancel: tell the executor
                    try:
                        await call.write(dumps({"cancel": control.reason or "interrupt"}))
                    except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                        pass  # the call has ended: its end is what we read next
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:  # full (another orchestrator's runs)
                return Ending(handed_back=True)
            log.warning("run %s: executor %s lost (%s)", run["run_id"], self.address, exc.code().name)
            return None
        finally:
            self.calls.pop(run["run_id"], None)
            call.cancel()

    async def close(self) -> None:
        await self.channel.close()


async def _to_the_end(coro):
    """Await `coro` to its end even if the task is cancelled meanwhile: QueueWorker.cancel has set the run's
    control.reason, which is passed on to the executor once the run is there."""
    future = asyncio.ensure_future(coro)
    while True:
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.cancelled():
                raise
            asyncio.current_task().uncancel()


class Orchestrator(QueueWorker):
    def __init__(self, rt: Runtime, executors: list[str], shared_secret: str, timeout: float) -> None:
        super().__init__(rt)
        self.links = [ExecutorLink(a, shared_secret, timeout, self._wake.set) for a in executors]
        self._watchers: list[asyncio.Task] = []

    async def start(self) -> None:
        self._watchers = [asyncio.create_task(link.watch(), name=f"executor-{link.address}") for link in self.links]
        await super().start()

    async def stop(self, drain_seconds: float = 0) -> None:
        await super().stop(drain_seconds)
        for task in self._watchers:
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        for link in self.links:
            await link.close()

    def free_slots(self) -> int:
        return sum(link.free for link in self.links)

    def execute(self, run: dict, control: RunControl):
        link = min((x for x in self.links if x.free > 0), key=lambda x: x.busy / x.slots, default=None)
        if link is not None:
            link.calls[run["run_id"]] = None  # taken now: the next run of this claim goes to the next least busy
        return self._dispatch(link, run, control)

    async def _dispatch(self, link: ExecutorLink | None, run: dict, control: RunControl) -> None:
        with observe_run(run) as end:
            emit = Emitter(self.rt, run, control)
            if link is None:  # its executor went away during the claim
                ending = Ending(handed_back=True)
            else:
                log.info("run %s on thread %s dispatched to executor %s (attempt %s)",
                         run["run_id"], run["thread_id"], link.address, run["attempt"])
                ending = await link.run(run, emit, control)
                if ending is None:  # lost with its executor: counted, as a lost worker's run is
                    ending = Ending(handed_back=True, retry=True)
            end.status = await record(self.rt, run, ending, emit)


class LocalExecutors:
    """`agent-server worker --executors N`: N executor processes on this host (127.0.0.1, free ports), started
    with the orchestrator, restarted when one dies, stopped with it."""

    RESTART_SECONDS = 1.0

    def __init__(self, count: int, config_path) -> None:
        self.count, self.config_path = count, config_path
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self._supervisors: list[asyncio.Task] = []
        self._stopping = False

    async def start(self) -> list[str]:
        addresses = [f"127.0.0.1:{_free_port()}" for _ in range(self.count)]
        for address in addresses:
            await self._spawn(address)
            self._supervisors.append(asyncio.create_task(self._supervise(address)))
        return addresses

    async def _spawn(self, address: str) -> None:
        port = address.rsplit(":", 1)[1]
        self.procs[address] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent_server.cli", "executor", "--config", str(self.config_path),
            "--host", "127.0.0.1", "--port", port,
        )

    async def _supervise(self, address: str) -> None:
        while True:
            code = await self.procs[address].wait()
            if self._stopping:
                return
            log.error("executor %s exited with %s; restarting it", address, code)
            await asyncio.sleep(self.RESTART_SECONDS)
            await self._spawn(address)

    async def stop(self) -> None:
        self._stopping = True
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.terminate()
        await asyncio.gather(*(p.wait() for p in self.procs.values()))
        for task in self._supervisors:
            task.cancel()
        await asyncio.gather(*self._supervisors, return_exceptions=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
