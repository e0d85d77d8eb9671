"""A node that cleans up when cancelled: it takes half a second, then records itself in the store
(namespace ("cleanup",), key = the run id), so a test can see whether the cleanup ran to its end."""
import asyncio
from typing import TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_store
from langgraph.graph import START, StateGraph


class State(TypedDict, total=False):
    done: bool


async def node(state: State, config: RunnableConfig) -> dict:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        await asyncio.sleep(0.5)
        await get_store().aput(("cleanup",), config["configurable"]["run_id"], {"done": True})
        raise
    return {"done": True}


graph = StateGraph(State).add_node("node", node).add_edge(START, "node").compile()
