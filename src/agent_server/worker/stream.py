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
            if mode == "values":
                if not ns:
                    self.last_values = chunk
                if "values" not in self.modes:  # asked for by us, not by the client
                    continue
            yield event_name(mode, ns), dumps(chunk)

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
