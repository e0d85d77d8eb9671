"""Thread state as the API shows it: snapshots of the checkpointer, shaped like the official server's."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any

import psycopg
from langgraph.errors import InvalidUpdateError
from langgraph.types import Command, StateSnapshot, StateUpdate

from .errors import BadRequest, NotFound
from .serde import to_jsonable

log = logging.getLogger(__name__)


def checkpoint_ref(config: dict | None) -> dict | None:
    if not config:
        return None
    c = config.get("configurable", {})
    ref = {"thread_id": c.get("thread_id"), "checkpoint_ns": c.get("checkpoint_ns", ""), "checkpoint_id": c.get("checkpoint_id")}
    if c.get("checkpoint_map"):
        ref["checkpoint_map"] = c["checkpoint_map"]
    return ref


def interrupts_json(interrupts) -> list[dict]:
    """Interrupts as a thread's state shows them: value and id only."""
    return [{"value": to_jsonable(i.value), "id": i.id} for i in interrupts]


def interrupts_by_task(snapshot: StateSnapshot) -> dict[str, list]:
    return {t.id: interrupts_json(t.interrupts) for t in snapshot.tasks if t.interrupts}


def snapshot_json(snapshot: StateSnapshot) -> dict[str, Any]:
    if snapshot.created_at is None:  # a subgraph that has not started
        return empty_state()
    tasks = []
    for t in snapshot.tasks:
        # a subgraph's task: its snapshot when asked for subgraphs, else where its checkpoints are
        child = t.state if isinstance(t.state, dict) else {}
        tasks.append(
            {
                "id": t.id,
                "name": t.name,
                "path": to_jsonable(t.path),
                "error": f"{type(t.error).__name__}({t.error})" if t.error else None,
                "interrupts": interrupts_json(t.interrupts),
                "checkpoint": {k: v for k, v in child.get("configurable", {}).items() if k in ("thread_id", "checkpoint_ns")} or None,
                "state": snapshot_json(t.state) if isinstance(t.state, StateSnapshot) else None,
                "result": to_jsonable(t.result) if t.result is not None else None,
            }
        )
    return {
        "values": to_jsonable(snapshot.values),
        "next": list(snapshot.next),
        "tasks": tasks,
        "metadata": to_jsonable(snapshot.metadata),
        "created_at": snapshot.created_at,
        "checkpoint": checkpoint_ref(snapshot.config),
        "parent_checkpoint": checkpoint_ref(snapshot.parent_config),
        "interrupts": interrupts_json(snapshot.interrupts),
        "checkpoint_id": (snapshot.config or {}).get("configurable", {}).get("checkpoint_id"),
        "parent_checkpoint_id": (snapshot.parent_config or {}).get("configurable", {}).get("checkpoint_id"),
    }


def empty_state(asked: dict | None = None) -> dict[str, Any]:
    """The state of a thread with no checkpoint (at all, or at the checkpoint `asked` for, which it echoes)."""
    c = (asked or {}).get("configurable", {})
    ref = {"checkpoint_id": c["checkpoint_id"], "thread_id": c["thread_id"]} if c.get("checkpoint_id") else None
    return {
        "values": {}, "next": [], "tasks": [], "metadata": None, "created_at": None,
        "checkpoint": ref, "parent_checkpoint": None, "interrupts": [],
        "checkpoint_id": ref and ref["checkpoint_id"], "parent_checkpoint_id": None,
    }


# ---- thread state operations (the graph of a thread is the one its runs used) ----------------------

def no_graph(thread_id) -> BadRequest:
    return BadRequest(
        f"Thread '{thread_id}' has no assigned graph ID. This usually occurs when no runs have been made on this "
        "particular thread. This operation requires a graph ID. Please ensure a run has been made for the thread or "
        "manually update the thread metadata (by setting the 'graph_id' field) before running this operation."
    )


async def thread_graph(rt, thread: dict, *, required: bool = False):
    graph_id = (thread.get("metadata") or {}).get("graph_id")
    if graph_id is None or graph_id not in rt.graphs:
        if required:
            raise no_graph(thread["thread_id"])
        return None
    return await rt.graphs.get(graph_id, thread.get("config") or {}, checkpointer=rt.checkpointer, store=rt.store)


def thread_config(thread_id, checkpoint: dict | None = None) -> dict:
    configurable = {"thread_id": str(thread_id), "checkpoint_ns": ""}
    for key, value in (checkpoint or {}).items():
        if value is not None and key != "thread_id":
            configurable[key] = value
    return {"configurable": configurable}


@contextmanager
def bad_update():
    """A graph refusing an update (unknown node, wrong shape) is the client's mistake: 400."""
    try:
        yield
    except (InvalidUpdateError, ValueError, TypeError) as exc:
        raise BadRequest(str(exc).split("\n")[0]) from None


async def get_state(rt, thread_id, checkpoint: dict | None = None, subgraphs: bool = False) -> dict:
    thread = await rt.threads.get(thread_id)
    graph = await thread_graph(rt, thread)
    config = thread_config(thread_id, checkpoint)
    snapshot = await graph.aget_state(config, subgraphs=subgraphs) if graph else None
    if snapshot is None or snapshot.created_at is None:
        return empty_state(config)
    return snapshot_json(snapshot)


async def update_state(rt, thread_id, values, *, as_node: str | None, checkpoint: dict | None) -> dict:
    # Under the thread's lock, concurrent updates each build on the one before; and the thread is
    # read there, so that the TTL sweep (which skips locked threads) cannot delete it under us.
    async with rt.threads.locked(thread_id):
        thread = await rt.threads.get(thread_id)
        graph = await thread_graph(rt, thread, required=True)
        config = {**thread_config(thread_id, checkpoint), "metadata": {"graph_id": thread["metadata"]["graph_id"]}}
        if checkpoint and checkpoint.get("checkpoint_id") and await rt.checkpointer.aget_tuple(config) is None:
            raise NotFound(f"Checkpoint {checkpoint['checkpoint_id']} not found")
        with bad_update():
            config = await graph.aupdate_state(config, values, as_node=as_node)
        await refresh_thread(rt, graph, thread_id)
    ref = checkpoint_ref(config)
    return {"checkpoint": ref, "configurable": ref, "checkpoint_id": ref["checkpoint_id"]}


async def refresh_thread(rt, graph, thread_id) -> None:
    """Copy the latest values and interrupts of the checkpointer into the thread row."""
    snapshot = await graph.aget_state(thread_config(thread_id))
    interrupts = interrupts_by_task(snapshot)
    await rt.threads.set_state(
        thread_id, values=to_jsonable(snapshot.values), interrupts=interrupts, paused=bool(snapshot.next or interrupts)
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


async def history(rt, thread_id, *, limit: int, before: dict | None, metadata: dict | None, checkpoint: dict | None) -> list[dict]:
    thread = await rt.threads.get(thread_id)
    graph = await thread_graph(rt, thread)
    if graph is None:
        return []
    return [
        snapshot_json(s)
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
    for thread_id in kept:  # the prune keeps whatever a run saves meanwhile: no lock needed
        try:
            await rt.checkpointer.aprune([str(thread_id)], strategy="keep_latest")
        except (NotImplementedError, psycopg.Error) as exc:  # a DeltaChannel graph; a concurrent prune
            log.warning("thread %s: could not prune its checkpoints past its TTL: %s", thread_id, exc)
    if deleted or kept:
        log.info("TTL sweep: deleted %d threads, pruned %d to their latest checkpoint", len(deleted), len(kept))
    return len(deleted) + len(kept)
