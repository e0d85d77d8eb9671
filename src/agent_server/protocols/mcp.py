"""MCP (https://modelcontextprotocol.io), stateless: every assistant the caller sees is a tool, called as a
stateless run with the assistant's config. The methods a tools-only server answers; no sessions."""
from __future__ import annotations

import logging
import re
from typing import Any, Awaitable, Callable
from uuid import UUID

from .. import __version__
from ..errors import AgentServerError, NotFound
from ..runtime import Runtime
from ..serde import dumps
from ..services import Context
from ..services import assistants, runs
from .jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND, RpcError, params_of

log = logging.getLogger(__name__)

VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")  # the protocol versions we speak
PAGE_SIZE = 100  # tools per tools/list page


async def handle(rt: Runtime, ctx: Context, message: dict, disconnected: Callable[[], Awaitable]) -> dict:
    """The result of one request; RpcError for an error object. `disconnected()` completes if the caller
    leaves (a tool call then stops waiting)."""
    method, params = message["method"], params_of(message)
    if method == "initialize":
        return initialize(params)
    if method == "ping":
        return {}
    if method == "tools/list":
        return await list_tools(rt, ctx, params.get("cursor"))
    if method == "tools/call":
        return await call_tool(rt, ctx, params, disconnected)
    raise RpcError(METHOD_NOT_FOUND, f"Method not found: {method}")


def initialize(params: dict) -> dict:
    """The client's protocol version if we speak it, else our latest (the client decides whether to go on)."""
    asked = params.get("protocolVersion")
    return {
        "protocolVersion": asked if asked in VERSIONS else VERSIONS[-1],
        "capabilities": {"tools": {"listChanged": False}},
        "serverInfo": {"name": "Agent Server", "version": __version__},
    }


def tool_name(name: str) -> str:
    """An assistant's name as an MCP tool name (letters, digits, `_-.`; at most 128)."""
    return re.sub(r"[^a-zA-Z0-9_\-.]", "", re.sub(r"\s+", "_", (name or "").strip()))[:128]


def _offset(cursor: Any) -> int:
    if cursor is None:
        return 0
    if not isinstance(cursor, str) or not cursor.isdigit():
        raise RpcError(INVALID_PARAMS, f"Invalid cursor: {cursor!r} is not one that tools/list gave")
    return int(cursor)


async def list_tools(rt: Runtime, ctx: Context, cursor: Any) -> dict:
    """A page of tools; `nextCursor` (a string, as the protocol types it) when more follow."""
    offset = _offset(cursor)
    page = await assistants.search(rt, ctx, limit=PAGE_SIZE + 1, offset=offset)
    tools, seen = [], set()
    for assistant in page[:PAGE_SIZE]:
        name = tool_name(assistant["name"])
        if not name or name in seen:  # two assistants of one name: the first is the tool (as tools/call finds it)
            continue
        seen.add(name)
        if (tool := await _tool(rt, ctx, assistant, name)) is not None:
            tools.append(tool)
    return {"tools": tools, **({"nextCursor": str(offset + PAGE_SIZE)} if len(page) > PAGE_SIZE else {})}


async def _tool(rt: Runtime, ctx: Context, assistant: dict, name: str) -> dict | None:
    try:
        schema = (await assistants.schemas(rt, ctx, assistant["assistant_id"]))["input_schema"]
    except Exception:  # a graph that cannot be built or described is left out, not the whole list
        log.warning("MCP: assistant %s has no input schema; not listed", assistant["assistant_id"], exc_info=True)
        return None
    if schema is None:
        return None
    schema = simplify(schema)
    schema.setdefault("type", "object")  # MCP wants an object schema
    return {
        "name": name,
        "title": assistant["name"],
        "description": assistant.get("description") or f"Tool based on the {assistant['name']} assistant",
        "inputSchema": schema,
        "annotations": {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": False, "openWorldHint": True},
    }


MESSAGE_DEFS = {  # LangChain's message classes in a graph's schema: a model calling the tool sends text instead
    f"{kind}{suffix}" for kind in ("AI", "Human", "Chat", "System", "Function", "Tool") for suffix in ("Message", "MessageChunk")
} | {"ToolCall", "ToolCallChunk", "InvalidToolCall", "UsageMetadata", "InputTokenDetails", "OutputTokenDetails"}


def simplify(schema: dict) -> dict:
    """A list of LangChain messages (`messages` of a MessagesState) becomes a string, the user's message, as
    the official server shows it: the graph's reducer turns that string into a human message."""
    defs = schema.get("$defs") or {}
    if not MESSAGE_DEFS & set(defs):
        return dict(schema)
    schema = {**schema, "$defs": {k: v for k, v in defs.items() if k not in MESSAGE_DEFS}}
    if not schema["$defs"]:
        del schema["$defs"]
    properties = {}
    for key, prop in (schema.get("properties") or {}).items():
        refs = [c.get("$ref", "") for c in (prop.get("items") or {}).get("oneOf") or (prop.get("items") or {}).get("anyOf") or []]
        if prop.get("type") == "array" and any(r.removeprefix("#/$defs/") in MESSAGE_DEFS for r in refs):
            prop = {"type": "string", "title": prop.get("title", key), "description": "The user message to send to the agent."}
        properties[key] = prop
    return {**schema, "properties": properties}


async def _find(rt: Runtime, ctx: Context, name: Any) -> UUID:
    """The assistant a tool name stands for: the first of that name in tools/list's order."""
    if isinstance(name, str) and name:
        offset = 0
        while page := await assistants.search(rt, ctx, limit=PAGE_SIZE, offset=offset):
            for assistant in page:
                if tool_name(assistant["name"]) == name:
                    return assistant["assistant_id"]
            offset += PAGE_SIZE
    raise RpcError(INVALID_PARAMS, f"Unknown tool: {name}")


async def call_tool(rt: Runtime, ctx: Context, params: dict, disconnected: Callable[[], Awaitable]) -> dict:
    """Run the tool's assistant as a stateless run and wait for it: its output as JSON text. A failing graph
    is a tool result with isError (the model sees the error); bad arguments are an error object."""
    assistant_id = await _find(rt, ctx, params.get("name"))
    arguments = params.get("arguments")
    if arguments is not None and not isinstance(arguments, dict):
        raise RpcError(INVALID_PARAMS, "Invalid params: 'arguments' must be an object")
    try:
        _, result = await runs.wait(rt, ctx, None, assistant_id, {"input": arguments or {}}, disconnected())
    except NotFound:
        raise RpcError(INVALID_PARAMS, f"Unknown tool: {params.get('name')}") from None
    except AgentServerError as exc:
        if exc.status_code >= 500:
            raise
        raise RpcError(INVALID_PARAMS, f"Invalid arguments: {exc.detail}") from None
    if result is None:  # the caller left
        return {"content": [], "isError": True}
    output = result.get("output")
    if result["status"] != "success" or (isinstance(output, dict) and "__error__" in output):
        return {"content": [{"type": "text", "text": _error_text(output, result["status"])}], "isError": True}
    return {"content": [{"type": "text", "text": dumps(output).decode()}]}


def _error_text(output: Any, status: str) -> str:
    error = output.get("__error__") if isinstance(output, dict) else None
    if isinstance(error, dict):
        return ": ".join(str(error[k]) for k in ("error", "message") if error.get(k)) or dumps(error).decode()
    return f"The run ended with status {status}"
