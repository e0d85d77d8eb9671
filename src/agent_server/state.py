"""Thread state as the API shows it: snapshots of the checkpointer, shaped like the official server's."""
from __future__ import annotations

from typing import Any

from langgraph.types import StateSnapshot

from .serde import to_jsonable


def checkpoint_ref(config: dict | None) -> dict | None:
    if not config:
        return None
    c = config.get("configurable", {})
    return {
        "thread_id": c.get("thread_id"),
        "checkpoint_ns": c.get("checkpoint_ns", ""),
        "checkpoint_id": c.get("checkpoint_id"),
        "checkpoint_map": c.get("checkpoint_map"),
    }


def interrupts_by_task(snapshot: StateSnapshot) -> dict[str, list]:
    return {t.id: to_jsonable(list(t.interrupts)) for t in snapshot.tasks if t.interrupts}


def snapshot_json(snapshot: StateSnapshot) -> dict[str, Any]:
    tasks = []
    for t in snapshot.tasks:
        state = t.state
        if isinstance(state, StateSnapshot):
            state = snapshot_json(state)
        elif state is not None:
            state = {"configurable": state.get("configurable", {})} if isinstance(state, dict) else None
        tasks.append(
            {
                "id": t.id,
                "name": t.name,
                "path": to_jsonable(t.path),
                "error": f"{type(t.error).__name__}({t.error})" if t.error else None,
                "interrupts": to_jsonable(list(t.interrupts)),
                "checkpoint": None,
                "state": state,
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
        "interrupts": to_jsonable(list(snapshot.interrupts)),
        "checkpoint_id": (snapshot.config or {}).get("configurable", {}).get("checkpoint_id"),
        "parent_checkpoint_id": (snapshot.parent_config or {}).get("configurable", {}).get("checkpoint_id"),
    }


def empty_state() -> dict[str, Any]:
    return {
        "values": {}, "next": [], "tasks": [], "metadata": None, "created_at": None,
        "checkpoint": None, "parent_checkpoint": None, "interrupts": [],
        "checkpoint_id": None, "parent_checkpoint_id": None,
    }


# ---- thread state operations (the graph of a thread is the one its runs used) ----------------------

async def thread_graph(rt, thread: dict, *, required: bool = False):
    from .errors import Invalid

    graph_id = (thread.get("metadata") or {}).get("graph_id")
    if graph_id is None or graph_id not in rt.graphs:
        if required:
            raise Invalid(f"Thread {thread['thread_id']} has no graph yet: run it first or create it with a graph_id")
        return None
    return await rt.graphs.get(graph_id, thread.get("config") or {}, checkpointer=rt.checkpointer, store=rt.store)


def thread_config(thread_id, checkpoint: dict | None = None) -> dict:
    configurable = {"thread_id": str(thread_id), "checkpoint_ns": ""}
    for key, value in (checkpoint or {}).items():
        if value is not None and key != "thread_id":
            configurable[key] = value
    return {"configurable": configurable}


async def get_state(rt, thread_id, checkpoint: dict | None = None, subgraphs: bool = False) -> dict:
    thread = await rt.threads.get(thread_id)
    graph = await thread_graph(rt, thread)
    if graph is None:
        return empty_state()
    snapshot = await graph.aget_state(thread_config(thread_id, checkpoint), subgraphs=subgraphs)
    if checkpoint and checkpoint.get("checkpoint_id") and not snapshot.created_at:
        from .errors import NotFound

        raise NotFound(f"Checkpoint {checkpoint['checkpoint_id']} not found")
    return snapshot_json(snapshot)


async def update_state(rt, thread_id, values, *, as_node: str | None, checkpoint: dict | None) -> dict:
    thread = await rt.threads.get(thread_id)
    graph = await thread_graph(rt, thread, required=True)
    config = await graph.aupdate_state(thread_config(thread_id, checkpoint), values, as_node=as_node)
    await refresh_thread(rt, graph, thread_id)
    return {"checkpoint": checkpoint_ref(config)}


async def refresh_thread(rt, graph, thread_id) -> None:
    """Copy the latest values and interrupts of the checkpointer into the thread row."""
    snapshot = await graph.aget_state(thread_config(thread_id))
    await rt.threads.set_state(thread_id, values=to_jsonable(snapshot.values), interrupts=interrupts_by_task(snapshot))


async def bulk_update(rt, thread_id, graph_id: str, supersteps: list[dict]) -> None:
    from langgraph.types import Command, StateUpdate

    graph = await rt.graphs.get(graph_id, checkpointer=rt.checkpointer, store=rt.store)
    steps = [
        [
            StateUpdate(
                Command(**u["command"]) if u.get("command") else u.get("values"), u.get("as_node")
            )
            for u in step.get("updates", [])
        ]
        for step in supersteps
    ]
    await graph.abulk_update_state(thread_config(thread_id), steps)
    await refresh_thread(rt, graph, thread_id)


async def history(rt, thread_id, *, limit: int, before: dict | str | None, metadata: dict | None, checkpoint: dict | None) -> list[dict]:
    thread = await rt.threads.get(thread_id)
    graph = await thread_graph(rt, thread)
    if graph is None:
        return []
    if isinstance(before, str):
        before = {"checkpoint_id": before}
    before_config = thread_config(thread_id, before) if before else None
    return [
        snapshot_json(s)
        async for s in graph.aget_state_history(
            thread_config(thread_id, checkpoint), filter=metadata, before=before_config, limit=limit
        )
    ]
