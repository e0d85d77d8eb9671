"""storage/serializer.py: checkpoint values read back as langgraph's JsonPlusSerializer reads them, LangChain's
messages in their current shape without being validated again."""
from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

import pytest
from langchain_core import messages as m
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from agent_server.persistence import make_serde
from agent_server.storage.checkpointer import PooledPostgresSaver
from agent_server.storage.serializer import CheckpointSerializer


@dataclass
class Note:
    text: str


def every_kind_of_message() -> list:
    call = {"name": "lookup", "args": {"q": "x", "n": [1, 2]}, "id": "call_1", "type": "tool_call"}
    return [
        m.HumanMessage("hi", id="h1", name="ann", additional_kwargs={"k": (1, 2)}),
        m.HumanMessage([{"type": "text", "text": "look"}, {"type": "image", "url": "https://x/y.png"}]),
        m.AIMessage("", tool_calls=[call], usage_metadata={"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
                    response_metadata={"model": "fake", "at": datetime.datetime(2026, 12, 3, 9, 0)}, id="a1"),
        m.AIMessage("", invalid_tool_calls=[{"name": "x", "args": "{oops", "id": "c2", "error": "bad json",
                                            "type": "invalid_tool_call"}]),
        m.AIMessageChunk("to", tool_call_chunks=[{"name": "lookup", "args": '{"q"', "id": "c3", "index": 0}], id="c"),
        m.ToolMessage("result", tool_call_id="call_1", name="lookup", artifact={"rows": [1]}, status="error"),
        m.ToolMessageChunk("part", tool_call_id="call_1"),
        m.SystemMessage("be brief"), m.SystemMessageChunk("be"),
        m.ChatMessage("hey", role="critic"), m.ChatMessageChunk("he", role="critic"),
        m.FunctionMessage("42", name="f"), m.FunctionMessageChunk("4", name="f"),
        m.HumanMessageChunk("h"), m.RemoveMessage(id="h1"),
    ]


def assert_same(ours, library) -> None:
    """Equal, and equal object by object: class, fields, which fields were set, extras."""
    assert ours == library
    if isinstance(library, m.BaseMessage):
        assert type(ours) is type(library)
        assert ours.__dict__ == library.__dict__
        assert ours.model_fields_set == library.model_fields_set
        assert ours.__pydantic_extra__ == library.__pydantic_extra__
    elif isinstance(library, (list, tuple)):
        for a, b in zip(ours, library, strict=True):
            assert_same(a, b)
    elif isinstance(library, dict):
        for key in library:
            assert_same(ours[key], library[key])


def test_every_kind_of_message_reads_back_as_the_library_reads_it():
    value = {"messages": every_kind_of_message(), "when": datetime.datetime(2026, 1, 2), "id": uuid.uuid4(),
             "nested": [{"m": m.AIMessage("deep")}], "pair": (1, "a")}
    library, ours = JsonPlusSerializer(), CheckpointSerializer()
    written = library.dumps_typed(value)
    assert ours.dumps_typed(value) == written  # the same bytes written
    assert_same(ours.loads_typed(written), library.loads_typed(written))
    for other in [("null", b""), ("bytes", b"x"), library.dumps_typed("text"), ("json", b'{"a": 1}')]:
        assert ours.loads_typed(other) == library.loads_typed(other)


def test_a_message_in_the_current_shape_is_not_validated_again(monkeypatch):
    calls = []
    validate = m.AIMessage.__init__

    def counting(self, *args, **kwargs):
        calls.append(kwargs.get("id"))
        validate(self, *args, **kwargs)

    written = CheckpointSerializer().dumps_typed([m.AIMessage("a", id="1"), m.AIMessage("b", id="2")])
    monkeypatch.setattr(m.AIMessage, "__init__", counting)
    assert [x.content for x in CheckpointSerializer().loads_typed(written)] == ["a", "b"]
    assert calls == []
    JsonPlusSerializer().loads_typed(written)
    assert calls == ["1", "2"]  # the library's read validates each one


def test_a_message_written_in_an_older_shape_is_rebuilt_by_its_constructor():
    """An AIMessage from before `tool_calls` was a field: its constructor derives them from additional_kwargs."""
    serde = JsonPlusSerializer()
    old = {"content": "", "type": "ai", "id": "old", "additional_kwargs": {"tool_calls": [
        {"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}]}}
    written = ("msgpack", _as_pydantic_ext("langchain_core.messages.ai", "AIMessage", old))
    ours = CheckpointSerializer().loads_typed(written)
    assert ours.tool_calls == [{"name": "lookup", "args": {"q": "x"}, "id": "call_9", "type": "tool_call"}]
    assert_same(ours, serde.loads_typed(written))


def test_a_message_not_as_the_library_writes_it_reads_back_as_the_library_reads_it():
    """Fields that are not a mapping, or a value cut short: whatever the library's read makes of it, not an error."""
    odd = _as_pydantic_ext("langchain_core.messages.human", "HumanMessage", ["not", "fields"])  # type: ignore[arg-type]
    cut = odd[:-8]
    cut = cut[:1] + bytes([len(cut) - 3]) + cut[2:]  # ext8: its length byte made to match, so its payload ends early
    for written in (("msgpack", odd), ("msgpack", cut)):
        assert CheckpointSerializer().loads_typed(written) == JsonPlusSerializer().loads_typed(written)


def _as_pydantic_ext(module: str, name: str, fields: dict) -> bytes:
    """How the library writes a pydantic model, with the fields given (an older shape, say)."""
    import ormsgpack
    from langgraph.checkpoint.serde.jsonplus import EXT_PYDANTIC_V2

    return ormsgpack.packb(ormsgpack.Ext(EXT_PYDANTIC_V2, ormsgpack.packb((module, name, fields, "model_validate_json"))))


@pytest.mark.parametrize("strict", [None, [["tests.nowhere", "Nothing"]]])
def test_the_allowlist_still_decides_for_other_classes_and_a_clone_keeps_reading_fast(strict):
    serde = make_serde({"allowed_msgpack_modules": strict})
    assert isinstance(serde, CheckpointSerializer)
    written = serde.dumps_typed([Note("n"), m.HumanMessage("hi")])
    blocked = serde.loads_typed(written)
    assert blocked[0] != Note("n") and blocked[1] == m.HumanMessage("hi")
    clone = serde.with_msgpack_allowlist([(__name__, "Note")])  # as langgraph does for a graph's own state types
    assert isinstance(clone, CheckpointSerializer)
    read = clone.loads_typed(written)
    assert read[0] == Note("n")
    library = JsonPlusSerializer(allowed_msgpack_modules=strict and [tuple(x) for x in strict])
    assert_same(read, library.with_msgpack_allowlist([(__name__, "Note")]).loads_typed(written))


async def test_our_saver_reads_with_it_by_default_and_with_the_serde_settings():
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool("postgresql://unused", open=False)
    assert isinstance(PooledPostgresSaver(pool).serde, CheckpointSerializer)
    assert isinstance(PooledPostgresSaver(pool, serde=make_serde({"pickle_fallback": False})).serde, CheckpointSerializer)
