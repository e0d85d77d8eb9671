"""Graphs built with `context_schema=`: a dataclass and a TypedDict, each with a Literal field."""
from dataclasses import dataclass
from typing import Literal

from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict  # pydantic renders typing.TypedDict only on Python >= 3.12


class State(TypedDict, total=False):
    answer: str


@dataclass
class Context:
    model: Literal["small", "large"] = "small"
    temperature: float = 0.0


class ContextDict(TypedDict, total=False):
    model: Literal["small", "large"]
    user_name: str


def node(state: State, runtime: Runtime) -> dict:
    context = runtime.context
    model = context.model if isinstance(context, Context) else (context or {}).get("model")
    return {"answer": str(model)}


graph = StateGraph(State, context_schema=Context).add_node("node", node).add_edge(START, "node").compile()
typed_dict_graph = (
    StateGraph(State, context_schema=ContextDict).add_node("node", node).add_edge(START, "node").compile()
)
