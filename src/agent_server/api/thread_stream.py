"""Thread event streams (the v3 protocol of `client.threads.stream`): POST /threads/{id}/stream/events (SSE),
POST /threads/{id}/commands (JSON)."""
from __future__ import annotations

from uuid import UUID

import orjson
from fastapi import APIRouter, Body, Request

from ..errors import Invalid
from ..services import thread_stream as service
from .common import JSONResponse, caller, runtime
from .sse import EventStream, sse_response

router = APIRouter(tags=["threads"], default_response_class=JSONResponse)


async def _json(request: Request):
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise Invalid("body: invalid JSON") from None


@router.post("/threads/{thread_id}/stream/events", response_class=EventStream, status_code=200)
async def thread_stream_events(request: Request, thread_id: UUID, body: dict = Body(default=None)):
    """The thread's events matching `channels` (and `namespaces` / `depth`), each numbered (`seq`, also the SSE
    id): those after `since` first, then new ones, until the client leaves."""
    flt = service.Filter.parse(await _json(request))
    return sse_response(await service.events(runtime(request), caller(request), thread_id, flt))


@router.post("/threads/{thread_id}/commands")
async def thread_command(request: Request, thread_id: UUID, body: dict = Body(default=None)):
    """One command (`{"id", "method", "params"}`): run.start, input.respond, agent.getTree, subscription.*.
    Answers success or a typed error (`{"type": "error", "error": <code>, "message"}`)."""
    command = await _json(request)
    if not isinstance(command, dict) or not isinstance(command.get("id"), int) or isinstance(command.get("id"), bool) \
            or not isinstance(command.get("method"), str):
        return JSONResponse({
            "type": "error", "id": command.get("id") if isinstance(command, dict) else None,
            "error": "invalid_argument", "message": "Protocol commands must include an integer id and string method.",
        }, status_code=400)
    return await service.command(runtime(request), caller(request), thread_id, command)
