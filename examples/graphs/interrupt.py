"""Human in the loop: drafts an answer, asks a human to approve it with interrupt(), then finishes."""
from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt


class State(TypedDict, total=False):
    topic: str
    draft: str
    approved: bool
    final: str


def draft(state: State) -> dict:
    return {"draft": f"draft about {state.get('topic', 'nothing')}"}


def review(state: State) -> dict:
    answer = interrupt({"question": "approve the draft?", "draft": state["draft"]})
    return {"approved": bool(answer)}


def finish(state: State) -> dict:
    return {"final": state["draft"] if state.get("approved") else "rejected"}


graph = (
    StateGraph(State)
    .add_node("draft", draft)
    .add_node("review", review)
    .add_node("finish", finish)
    .add_edge(START, "draft")
    .add_edge("draft", "review")
    .add_edge("review", "finish")
    .add_edge("finish", END)
    .compile()
)
