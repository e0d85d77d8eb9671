"""A graph factory: called for each run with the run's config; the greeting comes from it."""
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, MessagesState, StateGraph


def make_graph(config: RunnableConfig):
    greeting = (config.get("configurable") or {}).get("greeting", "hello")

    def greet(state: MessagesState) -> dict:
        return {"messages": [AIMessage(content=greeting)]}

    return StateGraph(MessagesState).add_node("greet", greet).add_edge(START, "greet").compile()
