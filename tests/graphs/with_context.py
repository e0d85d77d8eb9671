"""Graphs built with `context_schema=`: a dataclass, a TypedDict and a pydantic model refusing other keys, each with a
Literal field."""
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

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


class StrictContext(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: Literal["small", "large"] = "small"


def node(state: State, runtime: Runtime) -> dict:
    context = runtime.context
    model = context.model if isinstance(context, (Context, StrictContext)) else (context or {}).get("model")
    return {"answer": str(model)}


graph = StateGraph(State, context_schema=Context).add_node("node", node).add_edge(START, "node").compile()
typed_dict_graph = (
    StateGraph(State, context_schema=ContextDict).add_node("node", node).add_edge(START, "node").compile()
)
pydantic_graph = (
    StateGraph(State, context_schema=StrictContext).add_node("node", node).add_edge(START, "node").compile()
)
