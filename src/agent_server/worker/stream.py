"""Turn a graph's astream output into the API's SSE events (names and payloads of the official server)."""
from __future__ import annotations

from typing import Any, AsyncIterator

from langchain_core.messages import BaseMessage, BaseMessageChunk, message_chunk_to_message

from ..serde import dumps

# API stream mode -> langgraph stream mode
GRAPH_MODES = {
    "values": "values", "updates": "updates", "custom": "custom", "debug": "debug", "tasks": "tasks",
    "checkpoints": "checkpoints", "messages": "messages", "messages-tuple": "messages",
}


def event_name(mode: str, ns: tuple[str, ...]) -> str:
    return "|".join((mode, *ns)) if ns else mode


def _checkpoint_of(config: dict | None) -> dict | None:
    """A checkpoint's ids, from the config that points at it (None when it points at none)."""
    configurable = (config or {}).get("configurable") or {}
    if not configurable.get("thread_id") or not configurable.get("checkpoint_id"):
        return None
    checkpoint = {"checkpoint_id": configurable["checkpoint_id"], "thread_id": configurable["thread_id"]}
    if "checkpoint_ns" in configurable:
        checkpoint["checkpoint_ns"] = configurable["checkpoint_ns"] or ""
    if "checkpoint_map" in configurable:
        checkpoint["checkpoint_map"] = configurable["checkpoint_map"]
    return checkpoint


def _debug_task(task: dict) -> dict:
    """A task of a debug checkpoint: a subgraph's `state` (its config) becomes its `checkpoint`."""
    state = task.get("state")
    configurable = state.get("configurable") if isinstance(state, dict) else None
    if not configurable:
        return task
    task = {k: v for k, v in task.items() if k != "state"}
    task["checkpoint"] = configurable
    return task


def debug_checkpoint(payload: dict | None) -> dict | None:
    """The payload of a `debug` checkpoint event as the official server sends it: langgraph's, plus the
    `checkpoint` and `parent_checkpoint` it was written as and on top of."""
    if not payload:
        return None
    return {
        **payload,
        "tasks": [_debug_task(t) for t in payload.get("tasks") or []],
        "checkpoint": _checkpoint_of(payload.get("config")),
        "parent_checkpoint": _checkpoint_of(payload.get("parent_config")),
    }


class RunStream:
    """Converts one run's chunks; holds the partial messages of the `messages` mode."""

    def __init__(self, modes: list[str], subgraphs: bool) -> None:
        self.modes = modes
        self.subgraphs = subgraphs
        # "values" always: the last root values are the output of a run without a checkpointer.
        # "messages" always: langgraph then gives every message an id as it is produced, so that
        # updates and values show the ids the state will keep (as the official server's do).
        requested = (GRAPH_MODES[m] for m in modes if m in GRAPH_MODES)
        self.graph_modes = list(dict.fromkeys(["values", "messages", *requested]))
        self.messages: dict[str, BaseMessage] = {}
        self.last_values: Any = None
        self.interrupted = False  # the graph stopped on an interrupt (a root chunk carried one)
        self.interrupt_chunks: list[Any] = []  # the root values/updates shown to the client that carry interrupts
        self.shown_values: Any = None  # the last root values shown to the client

    async def events(self, graph, graph_input, config: dict, **kwargs) -> AsyncIterator[tuple[str, bytes]]:
        """Yield (event name, JSON payload) for every chunk in the requested modes."""
        if "events" in self.modes:
            async for event in graph.astream_events(graph_input, config, version="v2", **kwargs):
                if not event.get("parent_ids"):  # the graph itself
                    if event["event"] == "on_chain_stream":
                        continue  # its chunks are in the events of its nodes
                    if event["event"] == "on_chain_end":
                        self.last_values = event["data"].get("output")
                yield "events", dumps(event)
            return
        async for ns, mode, chunk in graph.astream(
            graph_input, config, stream_mode=self.graph_modes, subgraphs=True, **kwargs
        ):
            if ns and not self.subgraphs:
                continue
            if mode == "messages":
                for item in self._messages(chunk, ns):
                    yield item
                continue
            shown = mode != "values" or "values" in self.modes  # values are always asked for by us
            if not ns and mode in ("values", "updates"):
                self._absorb(mode, chunk, shown)
            if not shown:
                continue
            if mode == "debug" and chunk.get("type") == "checkpoint":
                chunk = {**chunk, "payload": debug_checkpoint(chunk["payload"])}
            yield event_name(mode, ns), dumps(chunk)

    def _absorb(self, mode: str, chunk: Any, shown: bool) -> None:
        interrupts = isinstance(chunk, dict) and chunk.get("__interrupt__")
        if interrupts:
            self.interrupted = True
            if shown:
                self.interrupt_chunks.append(chunk)
        if mode == "values":
            self.last_values = chunk
            if shown:
                self.shown_values = chunk

    def result(self) -> Any:
        """A run's output as the official server answers it from what its client was shown: the interrupts
        (one chunk as it came, several merged into one list), else the last root values; None when it was
        shown neither (the thread's state after the run decides)."""
        if len(self.interrupt_chunks) > 1:
            return {"__interrupt__": [i for chunk in self.interrupt_chunks for i in chunk["__interrupt__"]]}
        if self.interrupt_chunks:
            return self.interrupt_chunks[0]
        return self.shown_values

    def _messages(self, chunk: tuple[BaseMessage, dict], ns: tuple[str, ...]):
        message, metadata = chunk
        if "messages-tuple" in self.modes:
            yield event_name("messages", ns), dumps((message, metadata))
        if "messages" not in self.modes:
            return
        msg_id = message.id or ""
        if msg_id not in self.messages:
            yield event_name("messages/metadata", ns), dumps({msg_id: {"metadata": metadata}})
        if isinstance(message, BaseMessageChunk):
            prev = self.messages.get(msg_id)
            acc = prev + message if isinstance(prev, BaseMessageChunk) else message
            self.messages[msg_id] = acc
            yield event_name("messages/partial", ns), dumps([message_chunk_to_message(acc)])
        else:
            self.messages[msg_id] = message
            yield event_name("messages/complete", ns), dumps([message])
