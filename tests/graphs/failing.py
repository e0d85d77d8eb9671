"""Fails on demand: input {"fail": true} raises in the node."""
from typing import TypedDict

from langgraph.graph import START, StateGraph


class State(TypedDict, total=False):
    fail: bool
    ok: bool


def node(state: State) -> dict:
    if state.get("fail"):
        raise ValueError("asked to fail")
    return {"ok": True}


graph = StateGraph(State).add_node("node", node).add_edge(START, "node").compile()
