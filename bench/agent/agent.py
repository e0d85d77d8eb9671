"""An agent-shaped graph with no network, for bench/agent_bench.py: a fake chat model streams its answer token
by token (AIMessageChunks, so `messages-tuple` streaming works), decides on a tool call, a tool node answers,
and back to the model; `turns` model turns per run (the last one answers without a tool call). The state is a
`messages` list, so every step checkpoints a growing history.

Each token is `<turn>.<index>@<unix time it was emitted> `, so that a client can check order and loss and
measure the delay the server added to it (receive time minus emit time, on the same machine).

Configurable (all optional): tokens (60), token_gap (seconds between tokens, 0.003), turns (3), start_delay (seconds
before a run's first token, 0: time for followers to connect)."""
from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, AsyncIterator

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, MessagesState, StateGraph

TOOL = "lookup"


def _settings(config: RunnableConfig) -> tuple[int, float, int, float]:
    c = config.get("configurable") or {}
    return int(c.get("tokens", 60)), float(c.get("token_gap", 0.003)), int(c.get("turns", 3)), float(c.get("start_delay", 0))


def turn_of(messages: list[BaseMessage]) -> int:
    """Model turns already taken in the current run: the tool answers since the last user message."""
    turn = 0
    for message in reversed(messages):
        if message.type == "human":
            break
        turn += message.type == "tool"
    return turn


class PacedFakeModel(BaseChatModel):
    """Streams `tokens` tokens `token_gap` seconds apart, then a tool call unless this is the last turn."""

    tokens: int = 60
    token_gap: float = 0.003
    turn: int = 0
    last: bool = True

    @property
    def _llm_type(self) -> str:
        return "paced-fake"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        raise NotImplementedError("async only")

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        chunks = [c.message async for c in self._astream(messages, stop, run_manager, **kwargs)]
        message = chunks[0]
        for chunk in chunks[1:]:
            message += chunk
        return ChatResult(generations=[ChatGeneration(message=AIMessage(**message.model_dump(exclude={"type", "tool_call_chunks"})))])

    async def _astream(self, messages, stop=None, run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        for i in range(self.tokens):
            if i:
                await asyncio.sleep(self.token_gap)
            token = f"{self.turn}.{i}@{time.time():.6f} "
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token))
            if run_manager:
                await run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk
        if not self.last:
            call = {"name": TOOL, "args": {"query": f"turn {self.turn}"}, "id": f"call_{uuid.uuid4().hex[:12]}", "index": 0}
            chunk = ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[
                {**call, "args": f'{{"query": "turn {self.turn}"}}'}]))
            if run_manager:
                await run_manager.on_llm_new_token("", chunk=chunk)
            yield chunk


async def model(state: MessagesState, config: RunnableConfig) -> dict:
    tokens, gap, turns, start_delay = _settings(config)
    turn = turn_of(state["messages"])
    if turn == 0 and start_delay:
        await asyncio.sleep(start_delay)
    llm = PacedFakeModel(tokens=tokens, token_gap=gap, turn=turn, last=turn >= turns - 1)
    return {"messages": [await llm.ainvoke(state["messages"], config)]}


async def tools(state: MessagesState) -> dict:
    """Answers with the length of the history it was given (the client checks it: nothing lost on the way)."""
    call = state["messages"][-1].tool_calls[0]
    content = f"result of {call['args']['query']} ({len(state['messages'])} messages)"
    return {"messages": [ToolMessage(content=content, tool_call_id=call["id"], name=TOOL)]}


def route(state: MessagesState) -> str:
    return "tools" if getattr(state["messages"][-1], "tool_calls", None) else END


graph = (
    StateGraph(MessagesState)
    .add_node("model", model)
    .add_node("tools", tools)
    .add_edge(START, "model")
    .add_conditional_edges("model", route, ["tools", END])
    .add_edge("tools", "model")
    .compile()
)
