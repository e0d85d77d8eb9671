"""Returns what its node saw of the run: the config's `configurable` (without the checkpointer's internals)."""
from typing import TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph


class State(TypedDict, total=False):
    seen: dict


def node(state: State, config: RunnableConfig) -> dict:
    seen = {k: v for k, v in (config.get("configurable") or {}).items() if not k.startswith("__")}
    return {"seen": {k: v for k, v in seen.items() if isinstance(v, (str, int, float, bool, type(None)))}}


graph = StateGraph(State).add_node("node", node).add_edge(START, "node").compile()
