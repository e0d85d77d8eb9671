"""State {count: int, log: list}: small values the checkpoint saver keeps inline (count) and a list
kept as a blob (log). `graph` is static; `make_graph` is a factory whose node is named after the
assistant's config (configurable "node", default "step"), so each assistant has a different graph."""
import operator
from typing import Annotated, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph


class State(TypedDict, total=False):
    count: int
    log: Annotated[list[str], operator.add]


def build(node: str) -> StateGraph:
    def step(state: State) -> dict:
        return {"count": state.get("count", 0) + 1, "log": [node]}

    return StateGraph(State).add_node(node, step).add_edge(START, node)


graph = build("step").compile()


def make_graph(config: RunnableConfig):
    return build((config.get("configurable") or {}).get("node", "step")).compile()
