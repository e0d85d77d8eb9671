"""JSON-RPC 2.0: the few shapes and error codes MCP and A2A share (https://www.jsonrpc.org/specification)."""
from __future__ import annotations

from typing import Any

from ..serde import loads

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class RpcError(Exception):
    """Answered as the JSON-RPC error object of the request it arose in."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def object(self) -> dict:
        return {"code": self.code, "message": self.message, **({"data": self.data} if self.data is not None else {})}


def result(id_: Any, value: Any) -> dict:
    return {"jsonrpc": "2.0", "id": id_, "result": value}


def error(id_: Any, exc: RpcError) -> dict:
    return {"jsonrpc": "2.0", "id": id_, "error": exc.object()}


def parse(body: bytes) -> dict:
    """One JSON-RPC message (a request, a notification or a response), or RpcError (parse error, invalid
    request). Batches are not taken: MCP dropped them, A2A never had them."""
    try:
        message = loads(body)
    except ValueError:
        raise RpcError(PARSE_ERROR, "Parse error: the body is not JSON") from None
    if not isinstance(message, dict):
        raise RpcError(INVALID_REQUEST, "Invalid request: expected one JSON-RPC object")
    if message.get("jsonrpc") != "2.0":
        raise RpcError(INVALID_REQUEST, "Invalid request: 'jsonrpc' must be \"2.0\"")
    id_, method = message.get("id"), message.get("method")
    if id_ is not None and (isinstance(id_, bool) or not isinstance(id_, (str, int, float))):
        raise RpcError(INVALID_REQUEST, "Invalid request: 'id' must be a string or a number")
    if method is not None and not isinstance(method, str):
        raise RpcError(INVALID_REQUEST, "Invalid request: 'method' must be a string")
    if method is None and not ("result" in message or "error" in message):
        raise RpcError(INVALID_REQUEST, "Invalid request: neither a request, a notification nor a response")
    return message


def params_of(message: dict) -> dict:
    params = message.get("params")
    if params is not None and not isinstance(params, dict):
        raise RpcError(INVALID_PARAMS, "Invalid params: 'params' must be an object")
    return params or {}


def is_request(message: dict) -> bool:
    """A request wants an answer; a notification (no id) or a response (no method) gets none."""
    return message.get("method") is not None and message.get("id") is not None


def accepts(accept: str, media_type: str) -> bool:
    """Whether an Accept header allows `media_type` (wildcards too)."""
    kind = media_type.split("/")[0]
    for item in accept.lower().split(","):
        candidate = item.split(";")[0].strip()
        if candidate in (media_type, "*/*", f"{kind}/*"):
            return True
    return False
