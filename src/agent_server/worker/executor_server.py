"""`agent-server executor`: executes the runs an orchestrator dispatches to it (distributed mode).

It never claims from the queue: it runs graph code, writes checkpoints (so it needs DATABASE_URI) and sends the
events back as they are produced, then how the run ended; the orchestrator records it (worker/orchestrator.py).

Each slot is a thread with its own event loop and runtime (pool, checkpointer, store): graph code that blocks
its thread (a synchronous library's call) or burns the CPU holds up its own run only, never the gRPC server,
its heartbeats and cancellations, nor the runs of the other slots."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import sys
import threading
import uuid
from dataclasses import dataclass

import grpc

from ..broker import pack
from ..config import Settings
from ..graphs import GraphRegistry
from ..observability import observe_run
from ..runtime import Runtime
from ..serde import dumps, loads
from . import wire
from .executor import RunControl, produce

log = logging.getLogger(__name__)
SWITCH_INTERVAL_SECONDS = 0.001  # how long a slot's thread may hold the GIL while another waits (default 5 ms)


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class Slot:
    """One run at a time, on a thread and event loop of its own."""

    def __init__(self, settings: Settings, graphs: GraphRegistry, index: int) -> None:
        self.settings, self.graphs = settings, graphs
        self.busy = False
        self.loop = new_loop()
        self.rt: Runtime | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"slot-{index}", daemon=True)
        self.thread.start()

    def call(self, coro) -> asyncio.Future:
        """Run `coro` on this slot's loop; an asyncio future of the calling loop."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def open(self) -> None:
        async def start():
            # no broker: events go back to the orchestrator; a small pool: one run at a time
            self.rt = await Runtime.start(dataclasses.replace(self.settings, redis_uri=None, n_jobs_per_worker=1), self.graphs)

        await self.call(start())

    async def close(self) -> None:
        if self.rt is not None:
            await self.call(self.rt.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self.thread.join, 10)


@dataclass
class _Control(RunControl):
    task: asyncio.Task | None = None  # the execution, in its slot's loop


class _Sender:
    """The executor's side of `produce`'s emitter: events onto the call's outgoing queue (another thread's loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, out: asyncio.Queue) -> None:
        self.loop, self.out = loop, out

    def put(self, item) -> None:
        self.loop.call_soon_threadsafe(self.out.put_nowait, item)

    async def started(self) -> None:
        pass  # the orchestrator announced the run as it dispatched it

    async def __call__(self, event: str, data: bytes) -> None:
        self.put(pack(event, data))


class ExecutorServer:
    def __init__(self, settings: Settings, graphs: GraphRegistry, slots: int, shared_secret: str) -> None:
        self.settings, self.graphs, self.secret = settings, graphs, shared_secret
        self.executor_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.slots = [Slot(settings, graphs, i) for i in range(slots)]
        self.server: grpc.aio.Server | None = None
        self.tls = False

    async def start(self, host: str, port: int) -> int:
        credentials = wire.server_credentials()  # first: a misconfigured executor fails before it opens anything
        self.tls = credentials is not None
        # Slots are threads: one burning the CPU holds the GIL a switch interval each time another asks for it
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        for slot in self.slots:  # one after the other: each checks the schema
            await slot.open()
        self.server = grpc.aio.server(interceptors=[wire.SecretCheck(self.secret)], options=wire.OPTIONS)
        self.server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(wire.SERVICE, {
            "Execute": grpc.stream_stream_rpc_method_handler(self.execute),
            "Status": grpc.unary_unary_rpc_method_handler(self.status),
        })])
        if credentials is None:
            bound = self.server.add_insecure_port(f"{host}:{port}")
        else:
            bound = self.server.add_secure_port(f"{host}:{port}", credentials)
        await self.server.start()
        return bound

    async def stop(self, grace: float = 5) -> None:
        """Stop taking runs; those under way are handed back by their orchestrators once their calls end."""
        if self.server is not None:
            await self.server.stop(grace)
        for slot in self.slots:
            await slot.close()

    async def status(self, request: bytes, context) -> bytes:
        return dumps({"executor_id": self.executor_id, "slots": len(self.slots), "busy": sum(s.busy for s in self.slots)})

    async def execute(self, requests, context):
        run = wire.run_from_wire(loads(await anext(requests))["run"])
        slot = next((s for s in self.slots if not s.busy), None)
        if slot is None:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "no free slot")
        slot.busy = True
        out: asyncio.Queue = asyncio.Queue()
        control = _Control()
        work = slot.call(self._work(slot, run, control, _Sender(asyncio.get_running_loop(), out)))
        work.add_done_callback(lambda _: out.put_nowait(None))  # the end of the answers, whatever happened
        cancels = asyncio.create_task(self._cancels(requests, slot, control))
        try:
            while (message := await out.get()) is not None:
                yield message
        finally:  # the orchestrator went away (or cancelled the call): the run stops here, it hands it back
            cancels.cancel()
            if not work.done():
                self._cancel(slot, control, "release")

    async def _cancels(self, requests, slot: Slot, control: _Control) -> None:
        async for message in requests:
            if action := loads(message).get("cancel"):
                self._cancel(slot, control, action)

    def _cancel(self, slot: Slot, control: _Control, action: str) -> None:
        if control.finishing or control.reason:  # as QueueWorker.cancel: the first reason wins
            return
        control.reason = action
        slot.loop.call_soon_threadsafe(lambda: control.task and control.task.cancel())

    async def _work(self, slot: Slot, run: dict, control: _Control, send: _Sender) -> None:
        """In the slot's thread: execute the run, send how it ended."""
        control.task = asyncio.current_task()
        if control.reason:  # cancelled before it began
            control.task.cancel()
        try:
            with observe_run(run):
                log.info("run %s on thread %s started (attempt %s)", run["run_id"], run["thread_id"], run["attempt"])
                ending = await produce(slot.rt, run, send, control)
            send.put(pack(wire.ENDING, dumps(dataclasses.asdict(ending))))
        except Exception:
            log.exception("run %s: the execution failed", run["run_id"])
            raise
        finally:
            slot.busy = False
