"""Fails on demand: input {"fail": true} raises in the node; {"fail": "operational"} raises the
graph's own psycopg.OperationalError (its database is down), {"fail": "timeout"} a TimeoutError."""
from typing import TypedDict

import psycopg
from langgraph.graph import START, StateGraph


class State(TypedDict, total=False):
    fail: bool | str
    ok: bool


def node(state: State) -> dict:
    fail = state.get("fail")
    if fail == "operational":
        raise psycopg.OperationalError("the graph's own database is down")
    if fail == "timeout":
        raise TimeoutError("the graph's own call timed out")
    if fail:
        raise ValueError("asked to fail")
    return {"ok": True}


graph = StateGraph(State).add_node("node", node).add_edge(START, "node").compile()
