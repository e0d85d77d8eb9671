"""A parent graph that calls a compiled subgraph as one of its nodes."""
import operator
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def inner_a(state: State) -> dict:
    return {"log": ["inner_a"]}


def inner_b(state: State) -> dict:
    return {"log": ["inner_b"]}


inner = (
    StateGraph(State)
    .add_node("inner_a", inner_a)
    .add_node("inner_b", inner_b)
    .add_edge(START, "inner_a")
    .add_edge("inner_a", "inner_b")
    .add_edge("inner_b", END)
    .compile()
)


def before(state: State) -> dict:
    return {"log": ["before"]}


def after(state: State) -> dict:
    return {"log": ["after"]}


graph = (
    StateGraph(State)
    .add_node("before", before)
    .add_node("child", inner)
    .add_node("after", after)
    .add_edge(START, "before")
    .add_edge("before", "child")
    .add_edge("child", "after")
    .add_edge("after", END)
    .compile()
)
