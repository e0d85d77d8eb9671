"""Thread event streams (the v3 protocol of `client.threads.stream`): one SSE connection per filter over the
thread's numbered event log, resumable from any number (`since`); and the commands that start runs, answer
their interrupts and read the agent tree.

The log (storage/thread_events.py) is written by the workers executing the runs of threads someone follows
(a stream opened or a command sent here marks the thread, storage: thread_event_reader; runs started here
always) from what those runs stream (worker/protocol.py), and announced through the broker: a stream reads
what is stored after `since`, then what is announced, and fills any gap from the log again, so it works from
any API process and misses nothing."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, AsyncIterator
from uuid import UUID, uuid4

from ..broker import WATCH, thread_events_channel, unpack
from ..errors import AgentServerError, Invalid, NotFound
from ..runtime import Runtime
from ..serde import dumps, loads
from ..graphs import default_assistant_id
from . import Context
from . import runs as run_service
from . import threads as thread_service
from .runs import CHECK_SECONDS, MAX_BEHIND

# What a run started here streams (worker/protocol.py makes the events of these), subgraphs included.
STREAM_MODES = ["values", "updates", "messages-tuple", "custom", "tasks", "checkpoints"]
CHANNELS = ("values", "updates", "messages", "tools", "custom", "lifecycle", "input", "tasks", "checkpoints")


def _channel(event: dict) -> str | None:
    method = event.get("method")
    if method == "input.requested":
        return "input"
    if method == "custom":
        name = ((event.get("params") or {}).get("data") or {}).get("name")
        return f"custom:{name}" if name else "custom"
    return method if method in CHANNELS else None


def _prefix(namespace: list[str], prefix: list[str]) -> bool:
    """`prefix` starts `namespace`; a segment without `:` also matches a segment `<it>:<task id>`."""
    return len(prefix) <= len(namespace) and all(
        seg == cand or (":" not in seg and cand.split(":")[0] == seg) for seg, cand in zip(prefix, namespace)
    )


@dataclass(frozen=True)
class Filter:
    """What one stream connection asked for (an EventStreamRequest)."""

    channels: frozenset[str]
    namespaces: tuple[tuple[str, ...], ...] | None = None
    depth: int | None = None
    since: int = 0

    @classmethod
    def parse(cls, body: Any) -> "Filter":
        if not isinstance(body, dict):
            raise Invalid("body must be an object with channels")
        channels = body.get("channels")
        if not isinstance(channels, list) or not channels:
            raise Invalid("channels is required and must be a non-empty array")
        bad = [repr(c) for c in channels if not isinstance(c, str) or not (c in CHANNELS or c.startswith("custom:"))]
        if bad:
            raise Invalid(f"channels contains unsupported entries: {', '.join(bad[:5])}. Allowed: {', '.join(CHANNELS)}, or custom:<name>")
        namespaces = body.get("namespaces")
        if namespaces is not None and not (
            isinstance(namespaces, list)
            and all(isinstance(ns, list) and all(isinstance(s, str) for s in ns) for ns in namespaces)
        ):
            raise Invalid("namespaces must be a list of namespaces (lists of strings)")
        depth, since = body.get("depth"), body.get("since")
        for name, value in (("depth", depth), ("since", since)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise Invalid(f"{name} must be a non-negative integer")
        return cls(frozenset(channels), tuple(map(tuple, namespaces)) if namespaces else None, depth, since or 0)

    def matches(self, event: dict) -> bool:
        channel = _channel(event)
        if channel is None or not (channel in self.channels or (channel.startswith("custom:") and "custom" in self.channels)):
            return False
        if not self.namespaces:
            return True
        namespace = (event.get("params") or {}).get("namespace") or []
        return any(
            _prefix(namespace, list(p)) and (self.depth is None or len(namespace) - len(p) <= self.depth)
            for p in self.namespaces
        )


async def events(rt: Runtime, ctx: Context, thread_id: UUID, flt: Filter) -> AsyncIterator[tuple[str, bytes, str]]:
    """The thread's events after `flt.since` that match the filter, as (method, JSON, seq): those stored, then
    new ones as they come, until the client leaves. Empty names are heartbeats."""
    await thread_service.get(rt, ctx, thread_id)  # threads/read; 404 for a thread that is not (yet) there
    await watch(rt, thread_id)
    return _events(rt, thread_id, flt)


async def watch(rt: Runtime, thread_id: UUID) -> None:
    """A client follows this thread's events: its runs log them from now on, a run executing already included (its
    worker is told through the broker; its heartbeat would tell it within a few seconds anyway)."""
    for run_id in await rt.thread_events.watch(thread_id):
        await rt.broker.publish(WATCH, str(run_id).encode())


WATCH_AGAIN_SECONDS = 600.0  # an open stream marks its thread again this often (marks are pruned after an hour)


async def _events(rt: Runtime, thread_id: UUID, flt: Filter) -> AsyncIterator[tuple[str, bytes, str]]:
    last = flt.since
    watched_at = time.monotonic()

    async def stored():
        nonlocal last
        for row in await rt.thread_events.after(thread_id, last):
            last = row["seq"]
            yield row["seq"], row["event"]

    async with rt.broker.subscribe(thread_events_channel(thread_id), limit=MAX_BEHIND) as sub:
        pending = stored()
        while True:
            async for seq, data in pending:
                event = loads(data)
                if flt.matches(event):
                    yield event["method"], dumps({**event, "event_id": str(seq), "seq": seq}), str(seq)
            message = await sub.get(timeout=CHECK_SECONDS)
            if message is None:
                if sub.ended:  # shutting down, or the client fell too far behind: it reconnects with `since`
                    return
                yield "", b"", ""  # idle: a heartbeat, then a look at the log for anything the broker lost
                if time.monotonic() - watched_at > WATCH_AGAIN_SECONDS:
                    watched_at = time.monotonic()
                    await watch(rt, thread_id)
                pending = stored()
                continue
            _, seq, data = unpack(message)
            if int(seq) <= last:
                pending = _nothing()
            elif int(seq) == last + 1:
                last = int(seq)
                pending = _one(int(seq), data)
            else:  # some were missed: read them from the log
                pending = stored()


async def _one(seq: int, data: bytes):
    yield seq, data


async def _nothing():
    return
    yield


# ---- commands ------------------------------------------------------------------------------------------

class ProtocolError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _params(command: dict) -> dict:
    params = command.get("params")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ProtocolError("invalid_argument", "params must be an object")
    return params


async def command(rt: Runtime, ctx: Context, thread_id: UUID, command: dict) -> dict:
    """Answer one command: `{"type": "success", "id", "result", "meta"}` or `{"type": "error", "id", "error",
    "message"}` (a protocol error code); `meta.applied_through_seq` is the thread's last event number."""
    handlers = {
        "run.start": _run_start, "input.respond": _input_respond, "agent.getTree": _agent_tree,
        "subscription.subscribe": _subscribe, "subscription.unsubscribe": _unsubscribe,
        "subscription.reconnect": _reconnect,
    }
    method, command_id = command.get("method"), command.get("id")
    try:
        handler = handlers.get(method)
        if handler is None:
            raise ProtocolError("unknown_command", f"Unknown protocol command: {method}")
        result = await handler(rt, ctx, thread_id, _params(command))
        await watch(rt, thread_id)  # a client of this thread's events
    except ProtocolError as exc:
        return {"type": "error", "id": command_id, "error": exc.code, "message": exc.message}
    except NotFound as exc:
        return {"type": "error", "id": command_id, "error": "no_such_run" if method == "agent.getTree" else "invalid_argument", "message": exc.detail}
    except AgentServerError as exc:
        code = "permission_denied" if exc.status_code in (401, 403) else "invalid_argument"
        return {"type": "error", "id": command_id, "error": code, "message": exc.detail}
    meta = {"applied_through_seq": await rt.thread_events.last_seq(thread_id)}
    return {"type": "success", "id": command_id, "result": result, "meta": meta}


def _optional_dict(params: dict, key: str) -> dict | None:
    value = params.get(key)
    if value is not None and not isinstance(value, dict):
        raise ProtocolError("invalid_argument", f"{key} must be an object")
    return value


async def _start(rt: Runtime, ctx: Context, thread_id: UUID, assistant_id: Any, payload: dict) -> dict:
    """A run on the thread (made if missing) streaming what thread event streams show."""
    if not isinstance(assistant_id, str) or not assistant_id:
        raise ProtocolError("invalid_argument", "run.start requires an assistant_id.")
    payload = {
        **payload, "stream_mode": STREAM_MODES, "stream_subgraphs": True, "if_not_exists": "create",
        "on_completion": "keep", "protocol": True,
    }
    run = await run_service.create(rt, ctx, thread_id, _assistant(rt, assistant_id), payload)
    return {"run_id": str(run["run_id"])}


def _assistant(rt: Runtime, assistant_id: str) -> UUID:
    """An assistant id, or a graph id standing for its default assistant."""
    try:
        return UUID(assistant_id)
    except ValueError:
        if assistant_id in rt.graphs:
            return default_assistant_id(assistant_id)
        raise ProtocolError("invalid_argument", f"Invalid assistant: {assistant_id!r}: neither an assistant id nor a graph") from None


async def _pending_interrupts(rt: Runtime, ctx: Context, thread_id: UUID) -> dict[str, Any]:
    """The thread's interrupts waiting for an answer, by id (none for a thread not there yet)."""
    try:
        thread = await thread_service.get(rt, ctx, thread_id)
    except NotFound:
        return {}
    if thread.get("status") != "interrupted":
        return {}
    return {i["id"]: i for task in (thread.get("interrupts") or {}).values() for i in task if isinstance(i, dict) and "id" in i}


async def _run_start(rt: Runtime, ctx: Context, thread_id: UUID, params: dict) -> dict:
    payload = {"config": _optional_dict(params, "config"), "metadata": _optional_dict(params, "metadata")}
    value = params.get("input")
    if value is not None and await _pending_interrupts(rt, ctx, thread_id):
        payload["command"] = {"resume": value}  # input to a thread waiting on an interrupt answers it
    else:
        payload["input"] = value
    config = payload["config"] or {}
    if checkpoint_id := (config.get("configurable") or {}).get("checkpoint_id"):
        payload["checkpoint_id"] = checkpoint_id  # a fork from that checkpoint
    if "multitask_strategy" in params:
        payload["multitask_strategy"] = params["multitask_strategy"]
    return await _start(rt, ctx, thread_id, params.get("assistant_id"), {k: v for k, v in payload.items() if v is not None})


async def _input_respond(rt: Runtime, ctx: Context, thread_id: UUID, params: dict) -> dict:
    """Answer interrupts (one, or `responses`): a run resuming the thread with them."""
    entries = params.get("responses") if "responses" in params else [params]
    if not isinstance(entries, list) or not entries:
        raise ProtocolError("invalid_argument", "input.respond requires interrupt_id and response, or responses")
    # the thread's interrupts, and those its latest run has just asked (that run may be ending yet: the resuming
    # run is queued after it)
    pending = {*await _pending_interrupts(rt, ctx, thread_id), *await _asked(rt, thread_id)}
    resume = {}
    for entry in entries:
        interrupt_id = entry.get("interrupt_id") if isinstance(entry, dict) else None
        if not isinstance(interrupt_id, str):
            raise ProtocolError("invalid_argument", "input.respond requires an interrupt_id")
        if interrupt_id not in pending:
            raise ProtocolError("no_such_interrupt", f"No pending interrupt {interrupt_id} on this thread")
        resume[interrupt_id] = entry.get("response")
    command: dict[str, Any] = {"resume": resume}
    for key in ("update", "goto"):
        if params.get(key) is not None:
            command[key] = params[key]
    thread = await thread_service.get(rt, ctx, thread_id)
    assistant_id = (thread.get("metadata") or {}).get("assistant_id")
    payload = {"command": command, "config": _optional_dict(params, "config"), "metadata": _optional_dict(params, "metadata")}
    await _start(rt, ctx, thread_id, assistant_id, {k: v for k, v in payload.items() if v is not None})
    return {}


async def _latest_run_events(rt: Runtime, thread_id: UUID, run_id: Any = None) -> list[dict]:
    """The logged events of the thread's latest run started here (or of `run_id`)."""
    rows = await rt.thread_events.after(thread_id, 0)
    if run_id is None and rows:
        run_id = rows[-1]["run_id"]
    return [loads(r["event"]) for r in rows if str(r["run_id"]) == str(run_id)]


async def _asked(rt: Runtime, thread_id: UUID) -> set[str]:
    return {
        e["params"]["data"]["interrupt_id"] for e in await _latest_run_events(rt, thread_id) if e["method"] == "input.requested"
    }


async def _agent_tree(rt: Runtime, ctx: Context, thread_id: UUID, params: dict) -> dict:
    """The agents (root graph, subgraphs) of the thread's latest run, or of `run_id`, with their status, from
    their lifecycle events."""
    await thread_service.get(rt, ctx, thread_id)
    events = await _latest_run_events(rt, thread_id, params.get("run_id"))
    if not events:
        raise ProtocolError("no_such_run", "No run on this thread has started through commands")
    nodes: dict[tuple[str, ...], dict] = {}
    for event in events:
        if event["method"] != "lifecycle":
            continue
        namespace, data = event["params"]["namespace"], event["params"]["data"]
        node = nodes.setdefault(tuple(namespace), {"namespace": namespace, "status": data["event"], "graph_name": data.get("graph_name", "")})
        node["status"] = data["event"]
    for ns, node in sorted(nodes.items(), key=lambda item: -len(item[0])):
        if ns and (parent := nodes.get(ns[:-1])) is not None:
            parent.setdefault("children", []).insert(0, node)
    return {"tree": nodes.get((), {"namespace": [], "status": "started", "graph_name": ""})}


# Over HTTP a subscription is the stream connection itself (its request body): these only acknowledge.
async def _subscribe(rt: Runtime, ctx: Context, thread_id: UUID, params: dict) -> dict:
    Filter.parse(params)
    return {"subscription_id": str(uuid4()), "replayed_events": 0}


async def _unsubscribe(rt: Runtime, ctx: Context, thread_id: UUID, params: dict) -> dict:
    if not isinstance(params.get("subscription_id"), str):
        raise ProtocolError("invalid_argument", "subscription.unsubscribe requires a subscription_id")
    return {}


async def _reconnect(rt: Runtime, ctx: Context, thread_id: UUID, params: dict) -> dict:
    return {"restored": False}
