"""Execute one claimed run: build its config, stream its graph, record how it ended."""
from __future__ import annotations

import asyncio
import logging
from importlib.metadata import version
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import psycopg
from pydantic import BaseModel
from langgraph.errors import GraphInterrupt
from langgraph.types import Command, Send

from ..broker import DONE, RUN_STARTED, pack, run_channel, thread_channel, thread_events_channel, thread_message
from ..auth import AuthUser
from ..observability import observe_run
from ..runtime import Runtime
from ..serde import dumps, to_jsonable
from ..services.threads import interrupts_by_task, thread_config
from ..status import CANCEL_ACTIONS, RunOutcome, RunStatus, cancel_error
from ..storage.checkpointer import is_storage_error, storage_errors_marked
from .protocol import ProtocolStream
from .stream import RunStream

log = logging.getLogger(__name__)
LANGGRAPH_VERSION = version("langgraph")

def run_config(run: dict) -> dict:
    """The config recorded at creation, plus what only the execution knows (the attempt)."""
    config = dict(run["kwargs"]["config"])
    config.setdefault("run_name", config["configurable"]["graph_id"])  # names the root in events and traces
    if isinstance(user := config["configurable"].get("langgraph_auth_user"), dict):
        # `user.identity` as well as `user["identity"]`; langgraph gives it to nodes as runtime.server_info.user
        config["configurable"] = {**config["configurable"], "langgraph_auth_user": AuthUser(user)}
    config["metadata"] = {
        **(config.get("metadata") or {}),
        "run_attempt": run["attempt"],
        "langgraph_version": LANGGRAPH_VERSION,
        "langgraph_host": "self-hosted",
        "thread_id": str(run["thread_id"]),
        "run_id": str(run["run_id"]),
    }
    return config


def graph_context(graph, context: dict | None) -> dict | None:
    """The run's context as the official server hands it to its graph. A class context schema (a dataclass, a
    pydantic model) gets the keys it has fields for (a caller's configurable, its context when it gave none,
    holds others, which its constructor may refuse), and an empty one for none (its defaults; a required field
    fails the run, as there). Without one, the context when there is one."""
    schema = getattr(graph, "context_schema", None)
    if is_dataclass(schema):
        names = {field.name for field in fields(schema) if field.init}
    elif isinstance(schema, type) and issubclass(schema, BaseModel):
        names = set(schema.model_fields)
    else:
        return context or None
    return {key: value for key, value in (context or {}).items() if key in names}


def graph_input(kwargs: dict) -> Any:
    command = kwargs.get("command")
    if command:
        return Command(resume=command.get("resume"), update=_update(command.get("update")), goto=_goto(command.get("goto")))
    return kwargs.get("input")


def _goto(goto: Any) -> list:
    """A command's `goto`: a node, a `{"node", "input"}` Send, or a list of them."""
    if not goto:
        return []
    return [Send(g["node"], g.get("input")) if isinstance(g, dict) else g for g in (goto if isinstance(goto, list) else [goto])]


def _update(update: Any) -> Any:
    """A command's `update`: a mapping, or a list of [key, value] pairs (JSON has no tuples)."""
    if isinstance(update, list) and all(isinstance(u, list) and len(u) == 2 and isinstance(u[0], str) for u in update):
        return [tuple(u) for u in update]
    return update


@dataclass
class RunControl:
    """What the queue worker tells a run it executes, and what it may still do to it."""

    reason: str | None = None  # why the task was cancelled: interrupt | rollback | release (the first reason wins)
    finishing: bool = False  # past the graph, recording the outcome: no cancelling any more
    watched: bool = False  # someone began following the run's thread after it was claimed: log its events
    latest: Any = None  # its thread's latest checkpoint, read with its claim (storage/checkpointer.LatestCheckpoint)


class _Publisher:
    """A run's events to its followers; resumable runs number and store them so clients can reconnect.

    A resumable run's events are stored before they are published (a client reconnecting with its last id
    misses none), by a writer task of their own: the run does not wait a round trip per event, and the
    events that come while a write is in flight go together in the next one (one statement per batch)."""

    MAX_PENDING = 1000  # events not yet stored after which the run waits for the writer

    def __init__(self, rt: Runtime, run: dict) -> None:
        self.rt, self.run, self.run_id = rt, run, run["run_id"]
        self.channel = run_channel(self.run_id)
        self.resumable = run["kwargs"].get("resumable", False)
        self.seq: int | None = None
        self._pending: list[tuple[int, str, bytes]] = []
        self._writer: asyncio.Task | None = None
        self._stale = False  # this execution lost the run: its events are dropped

    async def __call__(self, event: str, data: bytes) -> None:
        if not self.resumable or event == DONE:
            await self.flush()  # after every stored event
            await self.rt.broker.publish(self.channel, pack(event, data))
            return
        if self._writer is not None and self._writer.done():
            await self.flush()  # raises if the last write failed: the run hears of it now (ours: handed back)
        if self._stale:  # this execution lost the run: its events are dropped, not kept until it stops
            return
        if self.seq is None:  # a retried run continues the numbering of its first attempt
            with storage_errors_marked():
                self.seq = await self.rt.events.last_seq(self.run_id)
        self.seq += 1
        self._pending.append((self.seq, event, data))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        if len(self._pending) >= self.MAX_PENDING:
            await self.flush()

    async def flush(self) -> None:
        """Once every event so far is stored and published (raises what a write raised, once)."""
        writer = self._writer
        if writer is not None:
            try:
                await asyncio.shield(writer)  # a cancelled run still stores what it streamed
            finally:
                if writer.done() and self._writer is writer:
                    self._writer = None

    async def _write(self) -> None:
        while self._pending and not self._stale:
            batch, self._pending = self._pending, []
            with storage_errors_marked():  # storing a resumable run's events is our database at work
                if not await self.rt.events.append(self.run, batch):
                    self._stale = True  # a stale execution: keep quiet
                    return
            for seq, event, data in batch:
                await self.rt.broker.publish(self.channel, pack(event, data, str(seq)))


class _ThreadLog:
    """A run's events for thread event streams, made of what the run streams: numbered in the thread's log, then
    announced to the API processes following the thread. Only for runs started through /threads/{id}/commands
    and runs of threads someone follows (storage: thread_event_reader), from their claim, or from the moment
    someone begins to follow (`control.watched`); other runs write nothing per event."""

    def __init__(self, rt: Runtime, run: dict, control: RunControl | None = None) -> None:
        self.rt, self.run, self.control = rt, run, control
        self.stream: ProtocolStream | None = None

    async def add(self, events: list[dict], held: bool = True) -> None:
        channel = thread_events_channel(self.run["thread_id"])
        for item in events:
            data = dumps(item)
            with storage_errors_marked():
                seq = await self.rt.thread_events.append(self.run, data, held=held)
            if seq is None:  # a stale execution: keep quiet
                return
            await self.rt.broker.publish(channel, pack("event", data, str(seq)))

    async def started(self) -> None:
        """When the run is claimed (the claim says whether the thread is followed)."""
        run = self.run
        if run["kwargs"].get("protocol") or run.get("thread_watched"):
            await self._open()

    async def _open(self, held: bool = True) -> None:
        self.stream = ProtocolStream(self.run["kwargs"]["config"]["configurable"]["graph_id"])
        await self.add(self.stream.started(), held=held)

    def _followed_since(self) -> bool:
        """Someone began following the thread after the claim, and nothing was logged yet."""
        return self.stream is None and self.control is not None and self.control.watched

    async def feed(self, event: str, data: bytes) -> None:
        if self._followed_since():
            await self._open()  # the run shows as running, then its events from here
        if self.stream is not None:
            await self.add(self.stream.feed(event, data))

    async def finished(self, status: str, error: Any = None, interrupted: bool = False) -> None:
        """After the run's end is recorded (so not as the run's holder any more)."""
        if self._followed_since():  # followed while in a node that streamed nothing more: running, then its end
            await self._open(held=False)
        if self.stream is not None:
            await self.add(self.stream.finished(status, error, interrupted or bool(self.stream.asked)), held=False)


class Emitter:
    """Where an execution's events go, in the process that holds the run: its followers (_Publisher) and the
    thread's event log. In distributed mode the executor sends them to the orchestrator, which calls this."""

    def __init__(self, rt: Runtime, run: dict, control: RunControl | None = None) -> None:
        self.rt, self.run = rt, run
        self.publish, self.thread_log = _Publisher(rt, run), _ThreadLog(rt, run, control)

    async def started(self) -> None:
        run_id, attempt = str(self.run["run_id"]), self.run["attempt"]
        started = thread_message(RUN_STARTED, {"run_id": run_id, "attempt": attempt})
        await self.rt.broker.publish(thread_channel(self.run["thread_id"]), started)  # for thread stream joiners
        await self.publish("metadata", dumps({"run_id": run_id, "attempt": attempt}))
        await self.thread_log.started()

    async def __call__(self, event: str, data: bytes) -> None:
        await self.publish(event, data)
        await self.thread_log.feed(event, data)


@dataclass
class Ending:
    """How an execution ended: all the queue needs to record it. Plain JSON once through `serde.dumps`
    (in distributed mode it travels from the executor to the orchestrator)."""

    handed_back: bool = False  # back to the queue, `retry` as in RunOutcome
    retry: bool = False
    finish: dict | None = None  # QueueRepo.finish's keyword arguments
    error: Any = None  # the run's error, sent as its `error` event
    interrupted: bool = False  # the graph stopped on an interrupt


async def execute(rt: Runtime, run: dict, control: RunControl) -> None:
    """Run to the end and record how it ended, unless the run is handed back to the queue."""
    with observe_run(run) as end:  # every line logged in here carries the run's ids
        log.info("run %s on thread %s started (attempt %s)", run["run_id"], run["thread_id"], run["attempt"])
        emit = Emitter(rt, run, control)
        end.status = await record(rt, run, await produce(rt, run, emit, control), emit)


async def produce(rt: Runtime, run: dict, emit, control: RunControl) -> Ending:
    """The execution: stream the graph's events to `emit` (an Emitter, or the executor's link back to its
    orchestrator), then say how it ended. Graph code runs here; nothing here touches the run's queue row."""
    stream = RunStream(run["kwargs"]["stream_mode"], run["kwargs"]["subgraphs"])
    outcome, graph = await _run_graph(rt, run, emit, stream, control)
    control.finishing = True  # no await since the graph stopped: a cancel from now on is ignored
    if outcome.status != RunStatus.SUCCESS and (flush := getattr(rt.checkpointer, "aflush", None)):
        await flush()  # a checkpoint the stopped graph left under way lands before the run's end is recorded
    if outcome.status is None:
        return Ending(handed_back=True, retry=outcome.retry)
    return await _conclude(rt, run, outcome, graph, stream)


async def record(rt: Runtime, run: dict, ending: Ending, emit: Emitter) -> str | None:
    """The orchestration's part once the graph stopped: hand the run back or record its end (fenced by the
    lease), then tell its followers. How the run ended; None: handed back to the queue (or to another worker)."""
    run_id, publish, thread_log = run["run_id"], emit.publish, emit.thread_log
    try:
        await publish.flush()  # what the run streamed is stored before its end is recorded
    except Exception as exc:
        if not is_storage_error(exc):
            raise
        if not ending.handed_back:
            log.warning("run %s: database unavailable (%s) while storing its events; handing it back", run_id, exc)
            ending = Ending(handed_back=True, retry=True)
    if ending.handed_back:
        try:
            status = await rt.queue.release(run, retry=ending.retry)
        except psycopg.Error:
            return  # the database is down: the lease expires and the sweep requeues the run
        if status in (RunStatus.ERROR, RunStatus.INTERRUPTED):  # not handed back: it has ended
            log.warning("run %s ended when handed back: %s", run_id, status)
            row = await rt.runs.output(run_id)  # none after a rollback
            await publish(DONE, dumps({"status": status, "output": row and row["output"]}))
            await thread_log.finished(status)
            return status
        return None
    if ending.error is not None:
        await publish("error", dumps(ending.error))
    result = await _finish(rt, run, ending.finish)
    if result is not None:
        await publish(DONE, dumps(result))
        await thread_log.finished(result["status"], ending.error, ending.interrupted)
    return result and result["status"]


async def _run_graph(rt: Runtime, run: dict, emit: Emitter, stream: RunStream, control: RunControl):
    """Stream the graph; returns (outcome, graph)."""
    run_id, kwargs = run["run_id"], run["kwargs"]
    graph = None
    deadline = asyncio.timeout(rt.settings.bg_job_timeout_secs)
    try:
        async with deadline:
            await emit.started()
            config = run_config(run)
            # A temporary thread dies with its run: no checkpoints, as the official server does.
            checkpointer = None if kwargs.get("temporary") else rt.checkpointer
            graph = await rt.graphs.get(
                config["configurable"]["graph_id"], config, checkpointer=checkpointer, store=rt.store
            )
            extra = {
                "interrupt_before": kwargs.get("interrupt_before"),
                "interrupt_after": kwargs.get("interrupt_after"),
                "durability": kwargs.get("durability") or "async",
            }
            if (context := graph_context(graph, kwargs.get("context"))) is not None:
                extra["context"] = context
            with rt.checkpoints.primed(run_id, control.latest if checkpointer else None):
                value = await _input_for_attempt(rt, graph, config, run)
                async for event, data in stream.events(graph, value, config, **extra):
                    await emit(event, data)
        return RunOutcome.success(), graph
    except asyncio.CancelledError:
        asyncio.current_task().uncancel()
        if control.reason == "release":
            return RunOutcome.handed_back(), graph
        return RunOutcome.cancelled(control.reason or "interrupt"), graph
    except TimeoutError as exc:
        if deadline.expired():
            return RunOutcome.failed(exc, RunStatus.TIMEOUT, "Run exceeded BG_JOB_TIMEOUT_SECS"), graph
        log.exception("run %s failed", run_id)  # a node's own timeout: the node's error
        return RunOutcome.failed(exc), graph
    except GraphInterrupt:  # interrupt() outside a node's normal flow still leaves a resumable state
        return RunOutcome.success(), graph
    except Exception as exc:
        if is_storage_error(exc):  # our database went away: the run is not at fault
            log.warning("run %s: database unavailable (%s); handing it back to retry later", run_id, exc)
            return RunOutcome.handed_back(retry=True), graph
        log.exception("run %s failed", run_id)
        return RunOutcome.failed(exc), graph


async def _input_for_attempt(rt: Runtime, graph, config: dict, run: dict) -> Any:
    """A retried run resumes from its last checkpoint instead of starting over."""
    if run["attempt"] > 1:
        latest = await rt.checkpointer.aget_tuple(thread_config(run["thread_id"]))
        if latest and (latest.metadata or {}).get("run_id") == str(run["run_id"]):
            log.info("run %s attempt %s resumes from checkpoint %s", run["run_id"], run["attempt"], latest.config["configurable"]["checkpoint_id"])
            return None
    return graph_input(run["kwargs"])


def _ran_to_the_end(stream: RunStream, kwargs: dict) -> bool:
    """The last values streamed are the whole final state when the graph did not stop on the way."""
    return (
        stream.last_values is not None and not stream.interrupted
        and not kwargs.get("interrupt_before") and not kwargs.get("interrupt_after")
    )


def _output(stream: RunStream, values: Any, interrupts: dict | None) -> Any:
    """A successful run's output, as the official server answers /runs/wait and join: from what the run
    showed its client (see RunStream.result), else from the thread's state after it: every interrupt
    waiting for an answer, or its values."""
    shown = stream.result()
    if shown is not None:
        return to_jsonable(shown)
    waiting = [i for task_interrupts in (interrupts or {}).values() for i in task_interrupts]
    if waiting:
        return {"__interrupt__": waiting}
    return values or {}


async def _conclude(rt: Runtime, run: dict, outcome: RunOutcome, graph, stream: RunStream) -> Ending:
    """What the run leaves: its output, the thread's state and status (read through the graph)."""
    run_id, thread_id, kwargs = run["run_id"], run["thread_id"], run["kwargs"]
    status, error = outcome.status, outcome.error
    values, interrupts = None, None
    thread_status = {RunStatus.ERROR: "error", RunStatus.TIMEOUT: "error"}.get(status)
    thread_error = error
    if outcome.cancel:
        thread_status, thread_error = CANCEL_ACTIONS[outcome.cancel][0], cancel_error(outcome.cancel)
    if outcome.cancel == "rollback":
        await rt.threads.delete_run_checkpoints(thread_id, run_id)
    if kwargs.get("temporary"):
        values = stream.last_values  # carries __interrupt__ already
    elif status == RunStatus.SUCCESS and _ran_to_the_end(stream, kwargs):
        values, interrupts = stream.last_values, {}  # the final state: no need to read it back
    elif graph is not None:
        try:
            snapshot = await graph.aget_state(thread_config(thread_id))
            values, interrupts = to_jsonable(snapshot.values), interrupts_by_task(snapshot)
            if (snapshot.next or snapshot.interrupts) and status == RunStatus.SUCCESS:  # stopped before its end
                thread_status = "interrupted"
        except Exception:
            log.exception("run %s: could not read the final state", run_id)
    if error:
        output = {"__error__": error}
    elif status == RunStatus.SUCCESS:
        output = _output(stream, values, interrupts if thread_status == "interrupted" else None)
    else:
        output = values
    finish = {
        "status": status, "output": output, "thread_status": thread_status, "values": values,
        "interrupts": interrupts, "error": thread_error, "rollback": outcome.cancel == "rollback",
        "delete_thread": kwargs.get("temporary", False),
    }
    return Ending(finish=finish, error=error, interrupted=stream.interrupted)


async def _finish(rt: Runtime, run: dict, finish: dict) -> dict | None:
    run_id, thread_id, kwargs = run["run_id"], run["thread_id"], run["kwargs"]
    status, output = RunStatus(finish["status"]), finish["output"]
    held = await rt.queue.finish(run, **{**finish, "status": status})
    if not held:
        if not kwargs.get("temporary") and not await rt.threads.exists(thread_id):
            # The thread was deleted while the run wrote checkpoints: remove what it left.
            await rt.checkpointer.adelete_thread(str(thread_id))
            log.info("run %s: its thread was deleted meanwhile", run_id)
        else:
            log.warning("run %s: lease lost to another worker; its outcome here is dropped", run_id)
        return None
    log.info("run %s on thread %s ended: %s", run_id, thread_id, "rollback" if finish["rollback"] else status)
    return {"status": status, "output": output}
