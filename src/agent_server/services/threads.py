"""Threads: creation (optionally pre-filled), search, updates, deletion with everything that hangs on
it, copies; their state, updates to it and its history; the TTL sweep."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from uuid import UUID, uuid4

import psycopg
from langgraph._internal._constants import CONFIG_KEY_CHECKPOINTER, ERROR, INTERRUPT, NULL_TASK_ID, RESUME
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command, StateSnapshot, StateUpdate

from ..broker import STATE_UPDATED, thread_channel, thread_message
from ..errors import AgentServerError, BadRequest, Invalid, NotFound
from ..serde import to_jsonable
from . import SYSTEM, Context, Filter
from . import runs

log = logging.getLogger(__name__)


def interrupts_json(interrupts) -> list[dict]:
    """Interrupts as a thread's state shows them: value and id only."""
    return [{"value": to_jsonable(i.value), "id": i.id} for i in interrupts]


def interrupts_by_task(snapshot: StateSnapshot) -> dict[str, list]:
    return {t.id: interrupts_json(t.interrupts) for t in snapshot.tasks if t.interrupts}


def thread_config(thread_id, checkpoint: dict | None = None) -> dict:
    configurable = {"thread_id": str(thread_id), "checkpoint_ns": ""}
    for key, value in (checkpoint or {}).items():
        if value is not None and key != "thread_id":
            configurable[key] = value
    return {"configurable": configurable}


def no_graph(thread_id) -> BadRequest:
    return BadRequest(
        f"Thread '{thread_id}' has no assigned graph ID. This usually occurs when no runs have been made on this "
        "particular thread. This operation requires a graph ID. Please ensure a run has been made for the thread or "
        "manually update the thread metadata (by setting the 'graph_id' field) before running this operation."
    )


async def thread_graph(rt, thread: dict, *, required: bool = False):
    """The graph a thread's runs use (None, or a 400 when `required`, before any run chose one). A
    factory builds it with the thread's config: that of the assistant of its last run, as a run would."""
    metadata = thread.get("metadata") or {}
    graph_id = metadata.get("graph_id")
    if graph_id is None or graph_id not in rt.graphs:
        if required:
            raise no_graph(thread["thread_id"])
        return None
    config = thread.get("config") or {}
    configurable = {**(config.get("configurable") or {}), "thread_id": str(thread["thread_id"]), "graph_id": graph_id}
    if metadata.get("assistant_id"):
        configurable["assistant_id"] = str(metadata["assistant_id"])
    return await rt.graphs.get(
        graph_id, {**config, "configurable": configurable}, checkpointer=rt.checkpointer, store=rt.store
    )


def graph_fault(exc: Exception) -> bool:
    """An exception the graph raised applying values to its channels and reducers (wrong shape, unknown
    node, a message its reducer cannot coerce...), not one of the database or of this server."""
    return not isinstance(exc, (psycopg.Error, AgentServerError, OSError))


@contextmanager
def bad_update():
    """A graph refusing an update (unknown node, wrong shape, values its reducers cannot apply) is the
    client's mistake: 400. Database errors go through (503 elsewhere)."""
    try:
        yield
    except Exception as exc:
        if not graph_fault(exc):
            raise
        raise BadRequest(str(exc).split("\n")[0] or f"{type(exc).__name__}: {exc!r}") from None


# ---- threads --------------------------------------------------------------------------------------

async def create(
    rt, ctx: Context, thread_id: UUID | None, *, metadata: dict, if_exists: str, ttl: dict | None,
    supersteps: list[dict] | None,
) -> dict:
    """A thread; `supersteps` pre-fill it (all or nothing), only when this call creates it. Without a
    `ttl`, that of checkpointer.ttl in langgraph.json, if any."""
    thread_id = thread_id or uuid4()
    ttl = ttl or rt.settings.default_thread_ttl
    asked = {"thread_id": thread_id, "metadata": dict(metadata), "if_exists": if_exists, "ttl": ttl}
    await ctx.authorize("threads", "create", asked)  # the policy may stamp the metadata (an owner)
    metadata = asked["metadata"]
    graph_id = metadata.get("graph_id")
    if supersteps and graph_id not in rt.graphs:
        raise Invalid("supersteps need metadata.graph_id naming one of this server's graphs")
    thread, created = await rt.threads.create(thread_id, metadata=metadata, if_exists=if_exists, ttl=ttl)
    if supersteps and created:
        try:
            await bulk_update(rt, thread_id, graph_id, supersteps)
        except Exception:
            await delete(rt, SYSTEM, thread_id)
            raise
        thread = await rt.threads.get(thread_id)
    return thread


async def allowed(ctx: Context, action: str, thread_id: UUID | None, **value) -> Filter:
    """The threads the caller may `action` (custom auth), for one thread or (thread_id None) many."""
    return await ctx.authorize("threads", action, {"thread_id": thread_id, **value})


async def search(rt, ctx: Context, **query) -> list[dict]:
    visible = await ctx.authorize("threads", "search", query)  # the policy may narrow the query itself
    return await rt.threads.search(**query, filter=visible)


async def count(rt, ctx: Context, **query) -> int:
    visible = await ctx.authorize("threads", "search", query)
    return await rt.threads.count(**query, filter=visible)


async def get(rt, ctx: Context, thread_id: UUID, *, include_ttl: bool = False) -> dict:
    visible = await allowed(ctx, "read", thread_id)
    return await rt.threads.get(thread_id, include_ttl=include_ttl, filter=visible)


async def update(rt, ctx: Context, thread_id: UUID, *, metadata: dict, ttl: dict | None) -> dict:
    asked = {"thread_id": thread_id, "metadata": dict(metadata)}
    visible = await ctx.authorize("threads", "update", asked)
    return await rt.threads.update(thread_id, metadata=asked["metadata"], ttl=ttl, filter=visible)


async def delete(rt, ctx: Context, thread_id: UUID) -> None:
    """The thread goes, its runs are cancelled and its checkpoints deleted."""
    await _delete(rt, thread_id, await allowed(ctx, "delete", thread_id))


async def _delete(rt, thread_id: UUID, visible: Filter) -> None:
    await rt.threads.get(thread_id, filter=visible)
    await runs.cancel(rt, SYSTEM, thread_id, None, "interrupt")  # the caller may delete it: its runs go with it
    await rt.threads.delete(thread_id, filter=visible)
    await rt.checkpointer.adelete_thread(str(thread_id))


async def prune(rt, ctx: Context, thread_ids: list[UUID], strategy: str) -> int:
    visible = await allowed(ctx, "delete", None, thread_ids=thread_ids)
    existing = await rt.threads.existing(list(dict.fromkeys(thread_ids)), filter=visible)
    if strategy == "delete":
        for thread_id in existing:
            try:
                await _delete(rt, thread_id, visible)
            except NotFound:  # deleted meanwhile
                pass
    else:
        for thread_id in existing:
            await prune_checkpoints(rt, thread_id)
    return len(existing)


async def prune_checkpoints(rt, thread_id: UUID) -> None:
    """Keep only the thread's latest checkpoint (per namespace). A saver that prunes in place (ours, or one with
    aprune) keeps whatever a run saves meanwhile; the fallback (delete, then put the latest back) does not,
    so it waits for the thread's lock and refuses (409) while runs are in flight."""
    if rt.checkpoints.capabilities["prune"] != "reinsert":
        await rt.checkpoints.prune([thread_id])
        return
    async with rt.threads.locked(thread_id, idle=True):
        await rt.checkpoints.prune([thread_id])


async def copy(rt, ctx: Context, thread_id: UUID) -> dict:
    return await rt.threads.copy(thread_id, uuid4(), filter=await allowed(ctx, "read", thread_id))


async def storage(rt, ctx: Context, thread_id: UUID) -> dict:
    return await rt.threads.storage(thread_id, filter=await allowed(ctx, "read", thread_id))


# ---- state ----------------------------------------------------------------------------------------

async def get_state(
    rt, ctx: Context, thread_id: UUID, checkpoint: dict | None = None, subgraphs: bool = False
) -> tuple[StateSnapshot | None, dict]:
    """The thread's state (at `checkpoint`), and the config that asked for it."""
    thread = await get(rt, ctx, thread_id)
    graph = await thread_graph(rt, thread)
    config = thread_config(thread_id, checkpoint)
    if graph is None:
        return None, config
    try:
        return await graph.aget_state(config, subgraphs=subgraphs), config
    except Exception as exc:
        if not graph_fault(exc):
            raise
        # the pending writes of a step the graph could not apply (a run's input its reducers refused):
        # the state is read without them, their tasks showing that error
        log.info("thread %s: its state shown without the pending writes the graph cannot apply: %r", thread_id, exc)
        saver = WithoutPendingWrites(rt.checkpointer, exc)
        unapplied = {**config, "configurable": {**config["configurable"], CONFIG_KEY_CHECKPOINTER: saver}}
        return await graph.aget_state(unapplied, subgraphs=subgraphs), config


class WithoutPendingWrites(BaseCheckpointSaver):
    """A checkpointer reading as `saver` does, but for the pending writes of tasks: those become the error
    `error` of their task (its interrupts, resumes and errors stay). Only for reading a state."""

    def __init__(self, saver: BaseCheckpointSaver, error: Exception) -> None:
        super().__init__(serde=saver.serde)
        self.saver, self.error = saver, error

    async def aget_tuple(self, config):
        saved = await self.saver.aget_tuple(config)
        if saved is None or not saved.pending_writes:
            return saved
        kept, dropped = [], {}
        for task_id, channel, value in saved.pending_writes:
            if channel in (ERROR, INTERRUPT, RESUME):
                kept.append((task_id, channel, value))
            elif task_id != NULL_TASK_ID:
                dropped[task_id] = None
        failed = {task_id for task_id, channel, _ in kept if channel == ERROR}
        kept += [(task_id, ERROR, self.error) for task_id in dropped if task_id not in failed]
        return saved._replace(pending_writes=kept)

    def get_next_version(self, current, channel):
        return self.saver.get_next_version(current, channel)


async def update_state(rt, ctx: Context, thread_id: UUID, values, *, as_node: str | None, checkpoint: dict | None) -> dict:
    """Apply `values` as if `as_node` had written them; returns the new checkpoint's config."""
    # Under the thread's lock, concurrent updates each build on the one before; and the thread is
    # read there, so that the TTL sweep (which skips locked threads) cannot delete it under us. A thread
    # with runs in flight is refused (409), and no run is queued on it until the update is done.
    visible = await allowed(ctx, "update", thread_id)
    async with rt.threads.locked(thread_id, idle=True, filter=visible) as conn:
        thread = await rt.threads.get(thread_id, filter=visible)
        graph = await thread_graph(rt, thread, required=True)
        # as the official server: the thread's configurable (its assistant's) goes with the update (and so into
        # the new checkpoint's metadata)
        assistant_configurable = (thread.get("config") or {}).get("configurable") or {}
        configurable = {
            **{k: v for k, v in assistant_configurable.items() if not k.startswith("checkpoint_")},
            **thread_config(thread_id, checkpoint)["configurable"],
        }
        config = {
            "configurable": configurable,
            "metadata": {"graph_id": thread["metadata"]["graph_id"]},
        }
        if checkpoint and checkpoint.get("checkpoint_id") and await rt.checkpointer.aget_tuple(config) is None:
            raise NotFound(f"Checkpoint {checkpoint['checkpoint_id']} not found")
        with bad_update():
            config = await graph.aupdate_state(config, values, as_node=as_node)
        await refresh_thread(rt, graph, thread_id, conn=conn)
    await rt.broker.publish(thread_channel(thread_id), thread_message(STATE_UPDATED, {"checkpoint": config["configurable"]}))
    return config


async def refresh_thread(rt, graph, thread_id, conn=None) -> None:
    """Copy the latest values and interrupts of the checkpointer into the thread row (on `conn`, the
    connection holding the thread's lock, if any)."""
    snapshot = await graph.aget_state(thread_config(thread_id))
    interrupts = interrupts_by_task(snapshot)
    await rt.threads.set_state(
        thread_id, values=to_jsonable(snapshot.values), interrupts=interrupts, paused=bool(snapshot.next or interrupts),
        conn=conn,
    )


async def bulk_update(rt, thread_id, graph_id: str, supersteps: list[dict]) -> None:
    """Pre-populate a new thread: each superstep is a list of updates applied as one step."""
    graph = await rt.graphs.get(graph_id, checkpointer=rt.checkpointer, store=rt.store)
    with bad_update():
        steps = [
            [StateUpdate(Command(**u["command"]) if u.get("command") else u.get("values"), u.get("as_node")) for u in step["updates"]]
            for step in supersteps
        ]
        await graph.abulk_update_state(thread_config(thread_id), steps)
    await refresh_thread(rt, graph, thread_id)


async def history(
    rt, ctx: Context, thread_id: UUID, *, limit: int, before: dict | None, metadata: dict | None,
    checkpoint: dict | None,
) -> list[StateSnapshot]:
    thread = await get(rt, ctx, thread_id)
    graph = await thread_graph(rt, thread)
    if graph is None:
        return []
    return [
        s
        async for s in graph.aget_state_history(
            thread_config(thread_id, checkpoint), filter=metadata,
            before=thread_config(thread_id, before) if before else None, limit=limit,
        )
    ]


async def expire_threads(rt) -> int:
    """The TTL sweep, for the queue's housekeeping: threads past their TTL are deleted (strategy
    `delete`) or keep only their latest checkpoint and get another TTL (`keep_latest`); leftover
    threads of stateless runs are deleted. Threads with runs in flight wait. Returns how many it handled."""
    deleted = await rt.threads.delete_expired()
    kept = await rt.threads.renew_expired_keep_latest()
    for thread_id in kept:
        try:
            await prune_checkpoints(rt, thread_id)
        except Exception as exc:  # a DeltaChannel graph; a concurrent prune; a run queued meanwhile; the saver's
            log.warning("thread %s: could not prune its checkpoints past its TTL: %s", thread_id, exc)
    if deleted or kept:
        log.info("TTL sweep: deleted %d threads, pruned %d to their latest checkpoint", len(deleted), len(kept))
    return len(deleted) + len(kept)
