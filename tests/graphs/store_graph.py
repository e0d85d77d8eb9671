"""Reads and writes the server's long-term store. Input: `namespace` (list of labels), and `put`
({key: value} to write) and/or `get` (a key to read, its value comes back as `got`, null if absent),
and/or `query` (a semantic search under `namespace`, the keys best first come back as `found`)."""
from typing import Any, TypedDict

from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime


class State(TypedDict, total=False):
    namespace: list[str]
    put: dict[str, dict]
    get: str
    got: Any
    query: str
    found: list[str]


async def use_store(state: State, runtime: Runtime) -> dict:
    namespace = tuple(state["namespace"])
    for key, value in (state.get("put") or {}).items():
        await runtime.store.aput(namespace, key, value)
    out: dict = {}
    if state.get("get"):
        item = await runtime.store.aget(namespace, state["get"])
        out["got"] = item.value if item else None
    if state.get("query"):
        out["found"] = [i.key for i in await runtime.store.asearch(namespace, query=state["query"])]
    return out


graph = StateGraph(State).add_node(use_store).add_edge(START, "use_store").compile()
