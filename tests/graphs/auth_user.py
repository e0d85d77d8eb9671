"""Returns the authenticated user as its node sees it: in the config, and as langgraph's runtime.server_info."""
from typing import TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime


class State(TypedDict, total=False):
    user: dict
    attribute_identity: str
    permissions: list
    server_info_user: str | None


def node(state: State, config: RunnableConfig, runtime: Runtime) -> dict:
    user = config["configurable"]["langgraph_auth_user"]
    info = runtime.server_info
    return {
        "user": dict(user),
        "attribute_identity": user.identity,
        "permissions": config["configurable"]["langgraph_auth_permissions"],
        "server_info_user": info.user.identity if info and info.user else None,
    }


graph = StateGraph(State).add_node("node", node).add_edge(START, "node").compile()
