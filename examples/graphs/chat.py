"""A chat agent on langchain_core's fake streaming chat model: answers token by token, no LLM needed."""
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import START, MessagesState, StateGraph


def _answers():
    while True:
        yield AIMessage(content="Hello there, this answer streams token by token.")


model = GenericFakeChatModel(messages=_answers())


async def chat(state: MessagesState) -> dict:
    return {"messages": [await model.ainvoke(state["messages"])]}


graph = StateGraph(MessagesState).add_node("chat", chat).add_edge(START, "chat").compile()
