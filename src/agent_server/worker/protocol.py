"""A run's stream as the events of thread event streams (the v3 protocol of `client.threads.stream`):
`{"type": "event", "method", "params": {"namespace", "timestamp", "data", "node"?}}`. Numbers (`seq`) and ids
are given when the events are stored (storage/thread_events.py)."""
from __future__ import annotations

import time
from typing import Any

from ..serde import loads

LIFECYCLE_OF_STATUS = {"success": "completed", "error": "failed", "timeout": "failed", "interrupted": "failed"}


def event(method: str, namespace: list[str], data: Any, node: str | None = None) -> dict:
    params: dict[str, Any] = {"namespace": namespace, "timestamp": int(time.time() * 1000), "data": data}
    if node is not None:
        params["node"] = node
    return {"type": "event", "method": method, "params": params}


def _interrupts(value: Any) -> list[dict]:
    """The interrupt requests in a values or updates payload (`__interrupt__`)."""
    items = value.get("__interrupt__") if isinstance(value, dict) else None
    return [
        {"interrupt_id": i["id"], **({"payload": i["value"]} if "value" in i else {})}
        for i in items or [] if isinstance(i, dict) and isinstance(i.get("id"), str)
    ]


class ProtocolStream:
    """Converts one run's (event name, JSON) stream events; keeps the messages being streamed."""

    def __init__(self, graph_id: str) -> None:
        self.graph_id = graph_id
        self.asked: set[str] = set()  # interrupt ids already announced
        self.namespaces: dict[tuple[str, ...], None] = {}  # subgraphs seen, in order
        self.messages: dict[str, dict] = {}  # message id -> {"namespace", "text"} of messages not finished
        self.ended = False  # the root's terminal lifecycle was sent (an interrupt sends it as it is asked)

    def started(self) -> list[dict]:
        # the root says "running" (as the official server; the SDK takes either), subgraphs "started"
        return [event("lifecycle", [], {"event": "running", "graph_name": self.graph_id})]

    def feed(self, name: str, data: bytes) -> list[dict]:
        mode, *namespace = name.split("|")
        if mode not in ("values", "updates", "messages", "custom", "tasks", "checkpoints"):
            return []  # metadata, errors: the lifecycle says how the run ends
        out = self._subgraph(namespace)
        value = loads(data)
        if mode == "values":
            out += self._ask(namespace, _interrupts(value))
            if isinstance(value, dict) and (values := {k: v for k, v in value.items() if k != "__interrupt__"}):
                out.append(event("values", namespace, values))
        elif mode == "updates":
            for node, values in (value or {}).items():
                if node == "__interrupt__":
                    out += self._ask(namespace, _interrupts(value))
                    continue
                out.append(event("updates", namespace, values if isinstance(values, dict) else {"value": values}, node))
        elif mode == "messages":
            out += self._message(namespace, *value)
        elif mode == "custom":
            out.append(event("custom", namespace, {"payload": value}))
        else:
            out.append(event(mode, namespace, value))
        return out

    def finished(self, status: str, error: Any = None, interrupted: bool = False) -> list[dict]:
        """The end of the run: open messages finish, subgraphs complete, then the root's terminal lifecycle."""
        out = [e for mid in list(self.messages) for e in self._finish_message(mid)]
        phase = "interrupted" if interrupted and status == "success" else LIFECYCLE_OF_STATUS.get(status, "failed")
        for ns in reversed(list(self.namespaces)):
            out.append(event("lifecycle", list(ns), {"event": "completed" if phase != "failed" else "failed", "graph_name": ns[-1].split(":")[0]}))
        if self.ended:
            return out
        data: dict[str, Any] = {"event": phase, "graph_name": self.graph_id}
        if phase == "failed" and error:
            data["error"] = str(error.get("message") if isinstance(error, dict) else error)
        return out + [event("lifecycle", [], data)]

    def _subgraph(self, namespace: list[str]) -> list[dict]:
        """A subgraph's first event is preceded by its `started` (and its parents')."""
        out = []
        for depth in range(1, len(namespace) + 1):
            ns = tuple(namespace[:depth])
            if ns not in self.namespaces:
                self.namespaces[ns] = None
                out.append(event("lifecycle", list(ns), {"event": "started", "graph_name": ns[-1].split(":")[0]}))
        return out

    def _ask(self, namespace: list[str], requests: list[dict]) -> list[dict]:
        new = [r for r in requests if r["interrupt_id"] not in self.asked]
        self.asked.update(r["interrupt_id"] for r in new)
        out = [event("input.requested", namespace, r) for r in new]
        if new and not self.ended:  # the run stops there: its root says so at once (as the official server)
            self.ended = True
            out.append(event("lifecycle", [], {"event": "interrupted", "graph_name": self.graph_id}))
        return out

    def _message(self, namespace: list[str], message: dict, metadata: dict) -> list[dict]:
        """A message chunk (or a whole message) of the `messages-tuple` mode as message/content-block events."""
        mid = str(message.get("id") or "")
        text = message.get("content") if isinstance(message.get("content"), str) else ""
        out = []
        if mid not in self.messages:
            role = {"human": "human", "system": "system", "tool": "tool"}.get(str(message.get("type")), "ai")
            meta = {k: v for k, v in (metadata or {}).items() if isinstance(v, (str, int, float, bool)) or v is None}
            self.messages[mid] = {"namespace": namespace, "text": ""}
            out.append(event("messages", namespace, {"event": "message-start", "role": role, "id": mid, "metadata": meta}))
            out.append(event("messages", namespace, {"event": "content-block-start", "id": mid, "index": 0, "content": {"type": "text", "text": ""}}))
        chunk = str(message.get("type", "")).endswith("Chunk") or message.get("type") == "AIMessageChunk"
        current = self.messages[mid]
        delta = text if chunk else text[len(current["text"]):] if text.startswith(current["text"]) else text
        if delta:
            current["text"] = current["text"] + delta if chunk or text.startswith(current["text"]) else text
            out.append(event("messages", namespace, {"event": "content-block-delta", "id": mid, "index": 0, "delta": {"type": "text-delta", "text": delta}}))
        if not chunk or message.get("chunk_position") == "last" or (message.get("response_metadata") or {}).get("finish_reason"):
            out += self._finish_message(mid)
        return out

    def _finish_message(self, mid: str) -> list[dict]:
        current = self.messages.pop(mid)
        namespace = current["namespace"]
        return [
            event("messages", namespace, {"event": "content-block-finish", "id": mid, "index": 0, "content": {"type": "text", "text": current["text"]}}),
            event("messages", namespace, {"event": "message-finish", "id": mid}),
        ]
