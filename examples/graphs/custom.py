"""Writes custom stream events (stream_mode="custom") while it works."""
from typing import TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import START, StateGraph


class State(TypedDict, total=False):
    count: int
    done: bool


def work(state: State) -> dict:
    write = get_stream_writer()
    count = state.get("count", 3)
    for i in range(count):
        write({"progress": i + 1, "of": count})
    return {"done": True}


graph = StateGraph(State).add_node("work", work).add_edge(START, "work").compile()
