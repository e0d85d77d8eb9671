"""MCP's Streamable HTTP transport, stateless (protocols/mcp.py answers): a POST carries one JSON-RPC
message and gets its answer as JSON; no server-initiated stream (GET) and no session to end (DELETE)."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ..protocols import jsonrpc, mcp
from .common import JSONResponse, caller, runtime
from .runs import _until_disconnected

router = APIRouter(tags=["mcp"], default_response_class=JSONResponse)
PATHS = ("/mcp", "/mcp/")  # clients are configured with either


async def post(request: Request) -> Response:
    if not (jsonrpc.accepts(request.headers.get("accept", ""), "application/json")
            or jsonrpc.accepts(request.headers.get("accept", ""), "text/event-stream")):
        refused = jsonrpc.RpcError(jsonrpc.INVALID_REQUEST, "Not Acceptable: the Accept header must list application/json and text/event-stream")
        return JSONResponse(jsonrpc.error(None, refused), status_code=400)
    try:
        message = jsonrpc.parse(await request.body())
    except jsonrpc.RpcError as exc:
        return JSONResponse(jsonrpc.error(None, exc), status_code=400)
    if not jsonrpc.is_request(message):  # a notification or a response: accepted, nothing to answer
        return Response(status_code=202)
    try:
        answer = jsonrpc.result(message["id"], await mcp.handle(
            runtime(request), caller(request), message, lambda: _until_disconnected(request)
        ))
    except jsonrpc.RpcError as exc:
        answer = jsonrpc.error(message["id"], exc)
    return JSONResponse(answer)


async def not_allowed(request: Request) -> Response:
    """GET (a stream of server-initiated messages) and DELETE (ending a session): a stateless server has neither."""
    return Response(status_code=405, headers={"Allow": "POST"})


for path in PATHS:
    router.add_api_route(path, post, methods=["POST"])
    router.add_api_route(path, not_allowed, methods=["GET", "DELETE"], include_in_schema=False)
