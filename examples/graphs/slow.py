"""A slow multi-step graph: `steps` nodes in a row, each sleeping `delay` seconds and recording itself.

Set the number of steps and the delay per run with context={"delay": 0.2} or config
{"configurable": {"delay": 0.2}}; `burn` makes each step spin the CPU instead of sleeping, `block` makes it block its thread (time.sleep).
"""
import asyncio
import operator
import time
from typing import Annotated, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

STEPS = 5


class State(TypedDict, total=False):
    steps: Annotated[list[str], operator.add]


def _setting(config: RunnableConfig, name: str, default: float) -> float:
    configurable = config.get("configurable") or {}
    return float(configurable.get(name, default))


def make_step(i: int):
    async def step(state: State, config: RunnableConfig) -> dict:
        delay = _setting(config, "delay", 0.05)
        if _setting(config, "block", 0):  # a synchronous library's call: the event loop's thread stops
            time.sleep(delay)
        elif _setting(config, "burn", 0):
            end = time.process_time() + delay
            while time.process_time() < end:
                pass
        else:
            await asyncio.sleep(delay)
        return {"steps": [f"step{i}"]}

    return step


builder = StateGraph(State)
prev = START
for i in range(1, STEPS + 1):
    builder.add_node(f"step{i}", make_step(i))
    builder.add_edge(prev, f"step{i}")
    prev = f"step{i}"
builder.add_edge(prev, END)
graph = builder.compile()
