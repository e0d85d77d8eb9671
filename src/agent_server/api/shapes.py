"""Responses shaped as the official server shapes them: threads, state snapshots, checkpoints."""
from __future__ import annotations

from typing import Any

from langgraph.types import StateSnapshot

from ..serde import to_jsonable
from ..services.threads import interrupts_json


def thread_json(row: dict) -> dict:
    """As the official server: `error` and `interrupts` appear once the thread has had some state."""
    if row.get("values") is None and row.get("error") is None and not row.get("interrupts"):
        return {k: v for k, v in row.items() if k not in ("error", "interrupts")}
    return row


def checkpoint_ref(config: dict | None) -> dict | None:
    if not config:
        return None
    c = config.get("configurable", {})
    ref = {"thread_id": c.get("thread_id"), "checkpoint_ns": c.get("checkpoint_ns", ""), "checkpoint_id": c.get("checkpoint_id")}
    if c.get("checkpoint_map"):
        ref["checkpoint_map"] = c["checkpoint_map"]
    return ref


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


def state_json(snapshot: StateSnapshot | None, asked: dict) -> dict[str, Any]:
    """A thread's state, or the empty state when it has none (at the checkpoint `asked` for)."""
    if snapshot is None or snapshot.created_at is None:
        return empty_state(asked)
    return snapshot_json(snapshot)


def update_json(config: dict) -> dict:
    """The answer to a state update: where the new checkpoint is."""
    ref = checkpoint_ref(config)
    return {"checkpoint": ref, "configurable": ref, "checkpoint_id": ref["checkpoint_id"]}
