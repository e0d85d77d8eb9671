"""Echo agent: answers every message with an AI message repeating it."""
from langchain_core.messages import AIMessage
from langgraph.graph import START, MessagesState, StateGraph


def echo(state: MessagesState) -> dict:
    last = state["messages"][-1] if state["messages"] else None
    text = last.content if last is not None else ""
    return {"messages": [AIMessage(content=f"echo: {text}")]}


graph = StateGraph(MessagesState).add_node("echo", echo).add_edge(START, "echo").compile()
