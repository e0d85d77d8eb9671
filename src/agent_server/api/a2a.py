"""A2A over HTTP (protocols/a2a.py answers): JSON-RPC at /a2a/{assistant_id}, message/stream as SSE of
JSON-RPC responses, and each assistant's agent card."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ..protocols import a2a, jsonrpc
from ..serde import dumps
from .common import JSONResponse, caller, runtime
from .runs import _until_disconnected
from .sse import EventStream

router = APIRouter(tags=["a2a"], default_response_class=JSONResponse)


@router.post("/a2a/{assistant_id}")
async def post(request: Request, assistant_id: str) -> Response:
    try:
        message = jsonrpc.parse(await request.body())
    except jsonrpc.RpcError as exc:  # as JSON-RPC over HTTP answers it: the error object, HTTP 200
        return JSONResponse(jsonrpc.error(None, exc))
    if not jsonrpc.is_request(message):
        return Response(status_code=202)
    id_, streaming = message["id"], message["method"] in a2a.STREAMING
    wanted = "text/event-stream" if streaming else "application/json"
    if not jsonrpc.accepts(request.headers.get("accept", ""), wanted):
        refused = jsonrpc.RpcError(jsonrpc.INVALID_REQUEST, f"Not Acceptable: the Accept header must include {wanted}")
        return JSONResponse(jsonrpc.error(id_, refused), status_code=400)
    rt, ctx = runtime(request), caller(request)
    try:
        if not streaming:
            result = await a2a.handle(rt, ctx, assistant_id, message, lambda: _until_disconnected(request))
            return JSONResponse(jsonrpc.result(id_, result))
        follower, updates = await a2a.STREAMING[message["method"]](rt, ctx, assistant_id, message)
    except jsonrpc.RpcError as exc:
        return JSONResponse(jsonrpc.error(id_, exc))

    async def events():
        async for update in updates:
            yield ("message", dumps(jsonrpc.result(id_, update)), "") if update is not None else ("", b"", "")

    async def close():  # the task goes on when the client leaves: tasks/get finds it
        await follower.__aexit__(None, None, None)

    return EventStream(events(), on_close=close)


@router.api_route("/a2a/{assistant_id}", methods=["GET", "DELETE"], include_in_schema=False)
async def not_allowed(assistant_id: str) -> Response:
    return Response(status_code=405, headers={"Allow": "POST"})


@router.get("/.well-known/agent-card.json")
async def agent_card(request: Request, assistant_id: str | None = None) -> Response:
    """The agent card of the assistant `?assistant_id=` names."""
    if not assistant_id:
        return JSONResponse({"error": {"code": jsonrpc.INVALID_PARAMS, "message": "Missing required query parameter: assistant_id"}}, status_code=400)
    return await _card(request, assistant_id)


@router.get("/a2a/{assistant_id}/.well-known/agent-card.json")
async def assistant_agent_card(request: Request, assistant_id: str) -> Response:
    return await _card(request, assistant_id)


async def _card(request: Request, assistant_id: str) -> Response:
    base = str(request.base_url).rstrip("/")  # with the mount prefix, when there is one
    try:
        return JSONResponse(await a2a.agent_card(runtime(request), caller(request), assistant_id, base))
    except jsonrpc.RpcError as exc:
        status = 404 if "not found" in exc.message else 400
        return JSONResponse({"error": exc.object()}, status_code=status)
