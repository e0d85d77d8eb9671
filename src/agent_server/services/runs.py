"""Runs: creation with multitask strategies (subscribed first when the caller follows it), waiting,
streaming, joining, cancelling; the events of a thread's runs one after another."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable
from uuid import UUID, uuid4

import psycopg
from langgraph.checkpoint.base.id import uuid6

from ..broker import (
    CANCEL, DONE, RUN_STARTED, STATE_UPDATED, WAKE, WEBHOOKS_DUE, Subscription, pack, read_thread_message, run_channel,
    thread_channel, unpack,
)
from ..errors import BOTH_CONFIGURABLE_AND_CONTEXT, BadRequest, Invalid, NotFound, Unavailable
from ..observability import request_id, trace_kwargs
from ..runtime import Runtime
from ..serde import dumps, loads
from ..status import FINISHED
from ..storage.assistants import StaleAssistant, seen
from ..storage.runs import SELECTABLE, Created, NewRun
from ..webhooks.policy import Refused
from . import Context

log = logging.getLogger(__name__)

RECHECK = "__recheck__"  # internal: the run may have ended without a worker (cancelled while pending)
CHECK_SECONDS = 5.0  # how often a waiter double-checks PostgreSQL in case a broker message was lost
# How far a follower may fall behind its run (a slow SSE client) before its stream is ended rather than buffered
# without bound; resumable clients reconnect with Last-Event-ID and miss nothing.
MAX_BEHIND = 5000


def run_kwargs(
    assistant: dict, run_id: UUID, thread_id: UUID, metadata: dict, payload: dict, temporary: bool, user=None,
    headers: tuple[tuple[str, str], ...] = (),
) -> dict:
    """The run's kwargs as the official server records them: the config is merged here, once.

    The caller's configurable keys reach the graph unchanged, but for the run's own ids and the
    authenticated user (`user`: the caller's, None without auth), which the server always sets;
    `user_id` is the caller's own when given, else the authenticated user's ("" without one). The run's
    context is the assistant's with the caller's on top: its `context`, else (as the official server) its
    configurable."""
    a_cfg, r_cfg = assistant.get("config") or {}, payload.get("config") or {}
    context = payload.get("context") or {}
    if context and r_cfg.get("configurable"):
        raise BadRequest(BOTH_CONFIGURABLE_AND_CONTEXT)
    identity = _identity(user)
    configurable = {
        **(a_cfg.get("configurable") or {}),
        **({**context, "__context_provided__": True} if context else {}),
        **(r_cfg.get("configurable") or {}),
        **dict(headers),  # the request's, as http.configurable_headers selects them
        **_auth_keys(user),
        **({"langgraph_request_id": request} if (request := request_id()) else {}),
        "run_id": str(run_id),
        "thread_id": str(thread_id),
        "graph_id": assistant["graph_id"],
        "assistant_id": str(assistant["assistant_id"]),
    }
    configurable.setdefault("user_id", identity)
    checkpoint = payload.get("checkpoint") or {}
    checkpoint_id = payload.get("checkpoint_id") or checkpoint.get("checkpoint_id")
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    if checkpoint.get("checkpoint_ns"):
        configurable["checkpoint_ns"] = checkpoint["checkpoint_ns"]
    return {
        "input": payload.get("input"),
        "command": payload.get("command"),
        "config": {**a_cfg, **r_cfg, "configurable": configurable, "metadata": metadata},
        "context": {**(assistant.get("context") or {}), **(context or r_cfg.get("configurable") or {})},
        "stream_mode": payload.get("stream_mode") or ["values"],
        "interrupt_before": payload.get("interrupt_before"),
        "interrupt_after": payload.get("interrupt_after"),
        "webhook": payload.get("webhook"),
        "feedback_keys": payload.get("feedback_keys"),
        "temporary": temporary,
        "subgraphs": bool(payload.get("stream_subgraphs")),
        "resumable": bool(payload.get("stream_resumable")),
        # started by /threads/{id}/commands: feeds thread event streams (absent otherwise, as the official kwargs)
        **({"protocol": True} if payload.get("protocol") else {}),
        "checkpoint_during": payload.get("checkpoint_during", True),
        "durability": payload.get("durability") or "async",
    }


def _auth_keys(user) -> dict:
    """The authenticated user as graphs get it in their configurable (as the official server gives it): without
    auth, no user and an empty id."""
    if user is None:
        return {"langgraph_auth_user": None, "langgraph_auth_user_id": "", "langgraph_auth_permissions": []}
    return {
        "langgraph_auth_user": dict(user) if isinstance(user, dict) else {"identity": _identity(user)},
        "langgraph_auth_user_id": _identity(user),
        "langgraph_auth_permissions": list(user.get("permissions") or []) if isinstance(user, dict) else [],
    }


def _identity(user) -> str:
    """An authenticated user's id: its `identity` (an object's or a mapping's); "" without a user."""
    if user is None:
        return ""
    identity = user.get("identity") if isinstance(user, dict) else getattr(user, "identity", user)
    return str(identity or "")


def payload_defaults(payload: dict) -> dict:
    """`checkpoint_during=false` is the older spelling of durability `exit`."""
    if payload.get("durability") is None and payload.get("checkpoint_during") is False:
        return {**payload, "durability": "exit"}
    return payload


async def check_interrupt_nodes(rt: Runtime, assistant: dict, payload: dict) -> None:
    """`interrupt_before` / `interrupt_after` name nodes of the graph the run will build ("*": all of them):
    a name it does not have is refused now, not found wanting at run time."""
    asked = {key: payload.get(key) for key in ("interrupt_before", "interrupt_after")}
    asked = {key: names for key, names in asked.items() if isinstance(names, list) and names}
    if not asked:
        return
    config = {**(assistant.get("config") or {}), **(payload.get("config") or {})}
    try:
        nodes = set((await rt.graphs.get(assistant["graph_id"], config)).nodes)
    except Exception:  # a graph that cannot be built here fails at run time, with its own error
        log.warning("graph %s: could not build it to check interrupt nodes", assistant["graph_id"], exc_info=True)
        return
    for key, names in asked.items():
        unknown = [name for name in names if name not in nodes]
        if unknown:
            raise Invalid(
                f"{key}: graph '{assistant['graph_id']}' has no node(s) {', '.join(map(repr, unknown))}. "
                f"Its nodes: {', '.join(sorted(n for n in nodes if not n.startswith('__')))} (or \"*\" for all)."
            )


async def _check_checkpoint(rt: Runtime, thread_id: UUID, payload: dict) -> None:
    """A run from a checkpoint of its thread: one it does not have (another thread's, or none) is a 404,
    not a run from an empty state."""
    checkpoint = payload.get("checkpoint") or {}
    checkpoint_id = payload.get("checkpoint_id") or checkpoint.get("checkpoint_id")
    if not checkpoint_id:
        return
    config = {"configurable": {
        "thread_id": str(thread_id), "checkpoint_ns": checkpoint.get("checkpoint_ns") or "",
        "checkpoint_id": str(checkpoint_id),
    }}
    if await rt.checkpointer.aget_tuple(config) is None:
        raise NotFound(f"Checkpoint {checkpoint_id} not found")


async def create(
    rt: Runtime, ctx: Context, thread_id: UUID | None, assistant_id: UUID, payload: dict, run_id: UUID | None = None
) -> dict:
    """Queue a run; `thread_id=None` makes a stateless run on a thread of its own."""
    await check_webhook(rt, payload.get("webhook"))
    asked = await _authorized(rt, ctx, thread_id, assistant_id, payload, run_id)
    try:  # from the assistant as this process last read it, if it is still the latest
        return await _create(rt, await _new_run(rt, ctx, asked, cached=True))
    except StaleAssistant:  # it changed since: read it again
        return await _create(rt, await _new_run(rt, ctx, asked))


async def _create(rt: Runtime, new: NewRun) -> dict:
    # With a free slot in this process's queue, the run is claimed as it is created (a run behind others on its
    # thread, or delayed, is only queued): no wake-up, no claim query, no wait for the queue's loop.
    local = rt.local_queue if not new.after_seconds else None
    start = local.reserve() if local else None
    if start:  # shielded: a caller cancelled after the commit must not leave a claimed run that nothing executes
        created = await asyncio.shield(_create_started(rt, local, new, start))
    else:
        created = await rt.runs.create(new)
    if created.started is None:
        await announce(rt, new, created)
    return created.run


async def _create_started(rt: Runtime, local, new: NewRun, start: dict) -> Created:
    """Create the run, claimed for the slot `local` (this process's queue worker) reserved, and give the slot back
    to it: with the run to execute, or empty (the run was only queued, or not created). When the database failed
    on the way (the statement may have committed, its answer lost), the worker hands back whatever this creation
    claimed, so that the run waits for no lease to expire."""
    created, unsure = None, None
    # The thread's latest checkpoint, read in the same round trip, for the run's start (none to read on a thread of
    # its own; a run from a given checkpoint reads that one)
    from_given = new.kwargs["config"]["configurable"].get("checkpoint_id")
    latest = None if new.ephemeral or from_given else rt.checkpoints.prefetch(new.thread_id)
    try:
        created = await rt.runs.create(new, start=start, then=latest)
    except psycopg.Error:
        unsure = new
        raise
    finally:
        await local.adopt(created and created.started, unsure=unsure, latest=latest)
    return created


async def check_webhook(rt: Runtime, url: str | None) -> None:
    """A webhook the `webhooks` policy refuses (an internal address, say) is refused now: 422, never dropped later."""
    if url is None:
        return
    try:
        await rt.settings.webhooks.check(url)
    except Refused as exc:
        raise Invalid(f"webhook {url[:200]!r} is refused: {exc}") from None


async def prepare(
    rt: Runtime, ctx: Context, thread_id: UUID | None, assistant_id: UUID, payload: dict, run_id: UUID | None = None
) -> NewRun:
    """The run to queue, checked by the rules every run follows, whoever queues it (the API, a cron firing)."""
    return await _new_run(rt, ctx, await _authorized(rt, ctx, thread_id, assistant_id, payload, run_id))


@dataclass(frozen=True)
class _Asked:
    """A run as asked for, once the caller's policy has seen it (and maybe stamped its metadata)."""

    thread_id: UUID | None
    assistant_id: UUID
    run_id: UUID
    payload: dict
    owner: dict  # the metadata a thread the run creates gets: the caller's, visible to them as theirs are


async def _authorized(
    rt: Runtime, ctx: Context, thread_id: UUID | None, assistant_id: UUID, payload: dict, run_id: UUID | None
) -> _Asked:
    """Asked once per run, whatever follows (a policy may count, log or change what it is shown)."""
    run_id = run_id or uuid6()
    payload = payload_defaults(payload)
    asked = {
        "thread_id": thread_id, "assistant_id": assistant_id, "run_id": run_id,
        "metadata": dict(payload.get("metadata") or {}), "multitask_strategy": payload.get("multitask_strategy"),
        "if_not_exists": payload.get("if_not_exists"), "after_seconds": payload.get("after_seconds"), "kwargs": payload,
    }
    if payload.get("multitask_strategy") == "rollback":
        rt.checkpoints.require_rollback("multitask_strategy 'rollback'")
    visible = await ctx.authorize("threads", "create_run", asked)  # the policy may stamp the run's metadata
    if thread_id is not None and visible and await rt.threads.exists(thread_id):
        await rt.threads.get(thread_id, filter=visible)  # another caller's thread: not found
    return _Asked(thread_id, assistant_id, run_id, {**payload, "metadata": asked["metadata"]}, visible.metadata)


async def _new_run(rt: Runtime, ctx: Context, asked: _Asked, cached: bool = False) -> NewRun:
    """The run, from its assistant: `cached`, as this process last read it (its creation checks it is still the
    latest: else StaleAssistant)."""
    thread_id, assistant_id, run_id, payload = asked.thread_id, asked.assistant_id, asked.run_id, asked.payload
    try:
        assistant = await (rt.assistants.cached(assistant_id) if cached else rt.assistants.get(assistant_id))
    except NotFound:
        raise NotFound("Thread or assistant not found.") from None
    await check_interrupt_nodes(rt, assistant, payload)
    stateless = thread_id is None
    if stateless and (payload.get("command") or {}).get("resume") is not None:
        raise BadRequest("You must provide a thread_id when resuming.")
    if not stateless:
        await _check_checkpoint(rt, thread_id, payload)
    temporary = stateless and (payload.get("on_completion") or "delete") == "delete"
    thread_id = thread_id or uuid4()
    under = assistant.get("metadata") or {}  # a thread's metadata goes between (storage: NewRun)
    own = {"graph_id": assistant["graph_id"], "assistant_id": str(assistant_id), **(payload.get("metadata") or {})}
    metadata = {**under, **own}
    return NewRun(
        run_id=run_id,
        thread_id=thread_id,
        assistant_id=assistant_id,
        graph_id=assistant["graph_id"],
        # with tracing on, the request's trace context too: the worker's span of the run continues its trace
        kwargs=run_kwargs(assistant, run_id, thread_id, metadata, payload, temporary, ctx.user, ctx.headers) | trace_kwargs(),
        metadata=own,
        assistant_metadata=under,
        multitask_strategy=payload.get("multitask_strategy") or "enqueue",
        after_seconds=payload.get("after_seconds") or 0,
        if_not_exists="create" if stateless else payload.get("if_not_exists") or "reject",
        ephemeral=temporary,
        owner=asked.owner,
        ttl=None if temporary else rt.settings.default_thread_ttl,
        assistant_seen=seen(assistant) if cached else None,
    )


async def announce(rt: Runtime, new: NewRun, created: Created) -> None:
    """Once a run is committed: stop the runs its multitask strategy cancelled, and wake the queue."""
    for run_id in created.running:
        await rt.broker.publish(CANCEL, f"{run_id} {new.multitask_strategy}".encode())
    await _recheck(rt, created.cancelled)
    await rt.broker.publish(WAKE, WEBHOOKS_DUE if created.cancelled else b"")


async def cancel(
    rt: Runtime, ctx: Context, thread_id: UUID | None, run_ids: list[UUID] | None, action: str,
    status: str | None = None, *, must_match: bool = False,
) -> None:
    """Pending runs end at once; workers running the others get a signal (and see a flag in PostgreSQL)."""
    if action == "rollback":
        rt.checkpoints.require_rollback("action 'rollback'")
    visible = await ctx.authorize("threads", "update", {"thread_id": thread_id, "run_ids": run_ids, "action": action})
    matched, running = await rt.runs.cancel(thread_id, run_ids, action, status, filter=visible)
    if must_match and not matched:
        if run_ids and await rt.runs.count_existing(run_ids):
            raise NotFound(
                "No matching runs to cancel. Please verify the thread ID and run IDs are correct, "
                "and the runs haven't been deleted or completed."
            )
        raise NotFound("No runs found to cancel.")
    for run_id in running:
        await rt.broker.publish(CANCEL, f"{run_id} {action}".encode())
    await _recheck(rt, matched)
    if len(matched) > len(running):  # pending runs ended here: their webhooks, if any, are due
        await rt.broker.publish(WAKE, WEBHOOKS_DUE)


async def _recheck(rt: Runtime, run_ids: list[UUID]) -> None:
    """Followers of these runs look in PostgreSQL now: the pending ones among them have just ended."""
    for run_id in run_ids:
        await rt.broker.publish(run_channel(run_id), pack(RECHECK, b""))


class RunFollower:
    """Subscribed to a run's events before the run can produce any: nothing is missed."""

    def __init__(self, rt: Runtime, run_id: UUID, from_start: bool = False) -> None:
        """`from_start`: subscribed before the run existed, so a resumable run's first event (number 0) is one
        to get too: one whose publish was lost is read back like any other."""
        self.rt, self.run_id, self.from_start = rt, run_id, from_start
        self._subscription = rt.broker.subscribe(run_channel(run_id), limit=MAX_BEHIND)
        self.sub: Subscription | None = None
        self.result: dict | None = None  # {"status", "output"} once the run has ended

    async def __aenter__(self) -> "RunFollower":
        self.sub = await self._subscription.__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        await self._subscription.__aexit__(*exc)

    def ready(self) -> bool:
        """The next event is waiting (the next step of events() will not wait)."""
        return self.sub.ready

    @property
    def over(self) -> bool:
        """Nothing more to follow: the run has ended, or this process stopped following it (shutdown; a
        reader too slow)."""
        return self.result is not None or self.sub.ended

    async def _ended_in_db(self) -> bool:
        row = await self.rt.runs.output(self.run_id)
        if row is None or row["status"] in FINISHED:
            self.result = row or {"status": "deleted", "output": None}
            return True
        return False

    async def events(
        self, check_first: bool = False, replay_after: int | None = None
    ) -> AsyncIterator[tuple[str, bytes, str]]:
        """The run's (event, data, id) until it ends; empty names are heartbeats of an idle stream.

        `replay_after`: first the stored events of a resumable run after that id, then live ones.

        A resumable run numbers its events one after another and stores each before publishing it: a number
        skipped live is an event whose publish was lost on the way (Redis away for a moment), read from storage
        before the one that came."""
        # the id of the last event given; None: not known yet (following from now on)
        seen = replay_after if replay_after is not None else (-1 if self.from_start else None)
        if replay_after is not None:
            async for item in self._stored(replay_after):
                seen = int(item[2])
                yield item
        if check_first and await self._ended_in_db():
            return
        while True:
            message = await self.sub.get(timeout=CHECK_SECONDS)
            if message is None:
                if self.sub.ended:  # this process is shutting down: the run goes on elsewhere
                    return
                if await self._ended_in_db():
                    return
                yield "", b"", ""  # idle: let the caller send a heartbeat
                continue
            event, event_id, data = unpack(message)
            if event == DONE:
                self.result = loads(data)
                return
            if event == RECHECK:
                if await self._ended_in_db():
                    return
            elif not event_id:
                yield event, data, event_id
                continue
            elif seen is None or int(event_id) > seen:  # else already replayed from storage
                if seen is not None and int(event_id) > seen + 1:
                    async for item in self._stored(seen, before=int(event_id)):
                        yield item
                seen = int(event_id)
                yield event, data, event_id
                continue
            if not self.sub.ready:
                # nothing to send, nothing waiting: a heartbeat, so that a caller that asked for this event
                # because one was waiting (api/sse.py batches them) does not hold what it has until the next
                yield "", b"", ""

    async def _stored(self, after: int, before: int | None = None) -> AsyncIterator[tuple[str, bytes, str]]:
        """The run's stored events numbered after `after` (and before `before`), as events() gives them."""
        for row in await self.rt.events.after(self.run_id, after):
            if before is not None and row["seq"] >= before:
                return
            yield row["event"], bytes(row["data"]), str(row["seq"])

    async def wait(self, check_first: bool = False) -> dict:
        async for _ in self.events(check_first):
            pass
        while self.result is None and self.sub.overflowed:  # fell behind the run's events: ask PostgreSQL
            await asyncio.sleep(CHECK_SECONDS)
            await self._ended_in_db()
        if self.result is None:
            raise Unavailable("The server is shutting down; join the run again on another server.")
        return self.result


THREAD_MODES = frozenset({"run_modes", "lifecycle", "state_update"})  # the official stream_modes of a thread stream


async def thread_events(
    rt: Runtime, ctx: Context, thread_id: UUID, modes: set[str], state_json: Callable[[Any, dict], dict]
) -> AsyncIterator[tuple[str, bytes, str]]:
    """Every run of a thread, one after another, and the thread's state updates, from now on: open until the
    client leaves. Each event has an id.

    `modes`: `run_modes` (every event of each run, its start and `run_done` metadata among them),
    `lifecycle` (only those metadata), `state_update` (the thread's state after each update through the
    API, shaped by `state_json(snapshot, asked)`); any other names keep those stream modes of each run, with
    its metadata and errors."""
    await rt.threads.get(thread_id, filter=await ctx.authorize("threads", "read", {"thread_id": thread_id}))
    return _thread_events(rt, ctx, thread_id, modes, state_json)


def _kept(event: str, modes: set[str]) -> bool:
    """Whether a run's event goes to a thread stream of these modes."""
    if "run_modes" in modes:
        return True
    by_run_mode = modes - THREAD_MODES
    if event == "metadata":  # a run's start or end
        return "lifecycle" in modes or bool(by_run_mode)
    if event == "error":
        return bool(by_run_mode)
    return event.partition("|")[0].partition("/")[0] in by_run_mode


class _EventIds:
    """Event ids of the official server's form (`<ms>-<seq>`), increasing along one stream."""

    def __init__(self) -> None:
        self.ms, self.seq = 0, 0

    def __call__(self) -> str:
        ms = int(time.time() * 1000)
        if ms > self.ms:
            self.ms, self.seq = ms, 0
        else:
            self.seq += 1
        return f"{self.ms}-{self.seq}"


async def _thread_events(
    rt: Runtime, ctx: Context, thread_id: UUID, modes: set[str], state_json: Callable[[Any, dict], dict]
) -> AsyncIterator[tuple[str, bytes, str]]:
    from . import threads as thread_service

    # One queue for all: the thread channel's messages, and each followed run's events. Bounded, so that a
    # slow client holds the runs' subscriptions back until they overflow and end the stream.
    out: asyncio.Queue = asyncio.Queue(maxsize=64)
    tasks: set[asyncio.Task] = set()
    followed: set[UUID] = set()
    last: asyncio.Task | None = None
    next_id = _EventIds()

    def follow(run_id: UUID, attempt: int | None = None) -> None:
        nonlocal last
        if run_id not in followed:  # a run is followed once, all its attempts
            followed.add(run_id)
            last = _spawn(tasks, _follow_run(rt, run_id, attempt, last, out))

    async with rt.broker.subscribe(thread_channel(thread_id)) as thread_sub:
        _spawn(tasks, _forward(thread_sub, out))
        try:
            active = await rt.runs.active_run(thread_id)
            if active is not None:
                follow(active)
            while True:
                try:  # not wait_for, which on Python 3.11 can lose the cancellation of a client leaving
                    async with asyncio.timeout(CHECK_SECONDS):
                        item = await out.get()
                except TimeoutError:
                    yield "", b"", ""  # idle: a heartbeat; and a run whose start message was lost is found
                    active = await rt.runs.active_run(thread_id)
                    if active is not None:
                        follow(active)
                    continue
                if item is None:  # shutting down, or the client fell too far behind
                    return
                event, data = item
                if event is not None:
                    if _kept(event, modes):
                        yield event, data, next_id()
                    continue
                kind, message = read_thread_message(data)
                if kind == RUN_STARTED:
                    follow(UUID(message["run_id"]), message.get("attempt"))
                elif kind == STATE_UPDATED and "state_update" in modes:
                    try:
                        snapshot, asked = await thread_service.get_state(rt, ctx, thread_id, message["checkpoint"])
                    except NotFound:  # the thread, or that checkpoint, is gone
                        continue
                    state = {"state": state_json(snapshot, asked), "thread_id": str(thread_id)}
                    yield "state_update", dumps(state), next_id()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _spawn(tasks: set[asyncio.Task], work: Awaitable) -> asyncio.Task:
    task = asyncio.ensure_future(work)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task


async def _forward(sub: Subscription, out: asyncio.Queue) -> None:
    """The thread channel's messages, as (None, message)."""
    while (message := await sub.get()) is not None:
        await out.put((None, message))
    await out.put(None)


async def _follow_run(
    rt: Runtime, run_id: UUID, attempt: int | None, before: asyncio.Task | None, out: asyncio.Queue
) -> None:
    """A run's events for a thread stream, once the run followed before it is done: its start, what it
    streams, `run_done`."""
    try:
        async with RunFollower(rt, run_id) as follower:
            if before is not None:
                await asyncio.wait([before])
            # The run's own metadata event may have gone out before we subscribed: say it here.
            await out.put(("metadata", dumps({"run_id": str(run_id), **({"attempt": attempt} if attempt else {})})))
            async for event, data, _ in follower.events(check_first=True):
                if not event:
                    continue
                if event == "metadata" and loads(data).get("attempt", 1) <= (attempt or 1):
                    continue  # said already; a later attempt's goes out
                await out.put((event, data))
            if follower.sub.ended:  # this process is shutting down, or the client fell too far behind
                await out.put(None)
                return
            await out.put(("metadata", dumps({"status": "run_done", "run_id": str(run_id)})))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("thread stream: following run %s failed", run_id)
        await out.put(None)


def spawn_cancel(rt: Runtime, ctx: Context, run_id: UUID) -> None:
    """Cancel from a context that is itself being torn down (a closed stream)."""
    task = asyncio.create_task(cancel(rt, ctx, None, [run_id], "interrupt"))
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Task] = set()


# ---- what a caller of the API does with runs ---------------------------------------------------------

async def get(rt: Runtime, ctx: Context, thread_id: UUID, run_id: UUID) -> dict:
    visible = await ctx.authorize("threads", "read", {"thread_id": thread_id, "run_id": run_id})
    return await rt.runs.get(run_id, thread_id, filter=visible)


async def list_runs(
    rt: Runtime, ctx: Context, thread_id: UUID, *, select: list[str] | None = None, **query
) -> list[dict]:
    """A thread's runs, newest first; with `select`, only those fields of each (unknown names: 422)."""
    if unknown := [c for c in select or () if c not in SELECTABLE]:
        expected = "{" + ", ".join(repr(c) for c in SELECTABLE) + "}"
        raise Invalid(f"Invalid select columns: {unknown}. Expected: {expected}")
    visible = await ctx.authorize("threads", "read", {"thread_id": thread_id})
    await rt.threads.get(thread_id, filter=visible)
    return await rt.runs.list(thread_id, **query, select=select, filter=visible)


async def queue(rt: Runtime, ctx: Context, *, limit: int, offset: int) -> dict:
    """The pending and running runs of every thread the caller may read (ours, not the official API's: the
    console's queue), with the worker holding each running one; the official run shape stays as it is."""
    visible = await ctx.authorize("threads", "read", {"thread_id": None})
    return await rt.runs.queue(limit=limit, offset=offset, filter=visible)


async def delete(rt: Runtime, ctx: Context, thread_id: UUID, run_id: UUID) -> None:
    visible = await ctx.authorize("threads", "delete", {"thread_id": thread_id, "run_id": run_id})
    await rt.runs.delete(run_id, thread_id, filter=visible)


async def _subscribed(rt: Runtime, run_id: UUID, then: Awaitable, from_start: bool = False) -> tuple["RunFollower", object]:
    """Subscribe to a run's events, then await what may start it (so no event is missed); a failure
    here unsubscribes at once, else the caller's stream does when it ends."""
    follower = await RunFollower(rt, run_id, from_start).__aenter__()
    try:
        return follower, await then
    except BaseException:
        await follower.__aexit__(None, None, None)
        raise


async def stream(
    rt: Runtime, ctx: Context, thread_id: UUID | None, assistant_id: UUID, payload: dict
) -> tuple[dict, "RunFollower"]:
    """Create a run and follow it from its first event. The caller closes the follower."""
    run_id = uuid6()
    follower, run = await _subscribed(rt, run_id, create(rt, ctx, thread_id, assistant_id, payload, run_id), True)
    return run, follower


def cancels_on_disconnect(payload: dict) -> bool:
    """A stream left early cancels its run, unless resumable (it exists to be reconnected to) or asked not to."""
    return (payload.get("on_disconnect") or ("continue" if payload.get("stream_resumable") else "cancel")) == "cancel"


async def wait(
    rt: Runtime, ctx: Context, thread_id: UUID | None, assistant_id: UUID, payload: dict, disconnected: Awaitable
) -> tuple[dict, dict | None]:
    """Create a run and wait for its end: (run, {"status", "output"}); None for the result when the
    caller left first (`disconnected` completed), which cancels the run if it asked for that."""
    run_id = uuid6()
    async with RunFollower(rt, run_id) as follower:
        run = await create(rt, ctx, thread_id, assistant_id, payload, run_id)
        result = await _unless(disconnected, follower.wait())
    if result is None and payload.get("on_disconnect") == "cancel":  # as the official server: else it goes on
        await cancel(rt, ctx, None, [run_id], "interrupt")
    return run, result


async def _unless(disconnected: Awaitable, work: Awaitable):
    """`work`'s result; None if `disconnected` completes first (`work` is then cancelled)."""
    task, gone = asyncio.ensure_future(work), asyncio.ensure_future(disconnected)
    try:
        await asyncio.wait((task, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, gone, return_exceptions=True)
    return task.result() if not task.cancelled() else None


async def join(rt: Runtime, ctx: Context, thread_id: UUID, run_id: UUID) -> tuple[dict, dict]:
    """Wait for a run's end: (run, {"status", "output"})."""
    async with RunFollower(rt, run_id) as follower:
        run = await get(rt, ctx, thread_id, run_id)
        return run, await follower.wait(check_first=True)


async def join_stream(
    rt: Runtime, ctx: Context, thread_id: UUID, run_id: UUID, last_event_id: str | None
) -> tuple[dict, "RunFollower", int | None]:
    """Follow a run from now on; with `last_event_id` on a resumable run, first every event after it.
    Returns (run, follower, the id to replay after). The caller closes the follower."""
    follower, run = await _subscribed(rt, run_id, get(rt, ctx, thread_id, run_id))
    replay_after = None
    if last_event_id is not None and run["kwargs"].get("resumable"):
        try:
            replay_after = int(last_event_id)
        except ValueError:
            await follower.__aexit__(None, None, None)
            raise Invalid(f"Last-Event-ID must be an event id, not {last_event_id!r}") from None
    return run, follower, replay_after


def of_modes(modes: list[str] | None) -> Callable[[str], bool] | None:
    """Which of a joined run's events (by name) go to a client that asked for these stream modes (None: every
    one), as the official server picks them: by the mode an event's name starts with (`messages` for both
    messages modes), its errors always, its metadata not."""
    if not modes:
        return None
    wanted = {"messages" if mode == "messages-tuple" else mode for mode in modes}
    return lambda event: not event or event == "error" or event.split("|", 1)[0].split("/", 1)[0] in wanted


async def cancel_one(rt: Runtime, ctx: Context, thread_id: UUID, run_id: UUID, action: str, wait: bool) -> None:
    """Cancel a run; with `wait`, return once it has ended."""
    async with RunFollower(rt, run_id) as follower:
        await cancel(rt, ctx, thread_id, [run_id], action, must_match=True)
        if wait:
            await follower.wait(check_first=True)
