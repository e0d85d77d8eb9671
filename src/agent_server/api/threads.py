"""Threads: metadata, status, state and history."""
from __future__ import annotations

import re
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, field_validator

from ..errors import Invalid
from ..services import runs as run_service
from ..services import threads as service
from .common import JSONResponse, caller, no_content, page, runtime
from .shapes import state_json, thread_json, update_json, snapshot_json
from .sse import EventStream, sse_response

router = APIRouter(tags=["threads"], default_response_class=JSONResponse)

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
ThreadColumn = Literal[
    "thread_id", "created_at", "updated_at", "state_updated_at", "metadata", "config", "status", "values", "interrupts",
]


class TTL(BaseModel):
    strategy: Literal["delete", "keep_latest"] = "delete"
    ttl: float = Field(gt=0, description="minutes")


class SuperstepUpdate(BaseModel):
    values: dict[str, Any] | list[Any] | None = None
    command: dict[str, Any] | None = None
    as_node: str


class Superstep(BaseModel):
    updates: list[SuperstepUpdate]


class ThreadCreate(BaseModel):
    thread_id: UUID | None = None
    metadata: dict = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    supersteps: list[Superstep] | None = None
    ttl: TTL | None = None


class ThreadPatch(BaseModel):
    metadata: dict = Field(default_factory=dict)
    ttl: TTL | None = None


class ThreadFilter(BaseModel):
    ids: list[UUID] | None = None
    metadata: dict | None = None
    values: dict | None = None
    status: ThreadStatus | None = None


class ThreadSearch(ThreadFilter):
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at", "state_updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[ThreadColumn] | None = None
    extract: dict[str, str] | None = Field(None, max_length=10)


class ThreadPrune(BaseModel):
    thread_ids: list[UUID] = Field(max_length=1000)
    strategy: Literal["delete", "keep_latest"] = "delete"


class Checkpoint(BaseModel):
    thread_id: str | None = None
    checkpoint_ns: str | None = ""
    checkpoint_id: str | None = None
    checkpoint_map: dict | None = None


class StateUpdate(BaseModel):
    values: dict[str, Any] | list[Any] | None = None
    as_node: str | None = None
    checkpoint: Checkpoint | None = None
    checkpoint_id: str | None = None


class StateAtCheckpoint(BaseModel):
    checkpoint: Checkpoint
    subgraphs: bool = False


class HistoryQuery(BaseModel):
    limit: int = Field(1, ge=1, le=1000)  # the official server's default, for GET and POST alike
    before: Checkpoint | str | None = None
    metadata: dict | None = None
    checkpoint: Checkpoint | None = None

    @field_validator("before", mode="before")
    @classmethod
    def _unwrap_config(cls, before):
        """`before` as the official server reads it, a config {"configurable": {...}}; or the checkpoint itself."""
        if isinstance(before, dict) and isinstance(before.get("configurable"), dict):
            return before["configurable"]
        return before


def _checkpoint(cp: Checkpoint | str | None, checkpoint_id: str | None = None) -> dict | None:
    out = {"checkpoint_id": cp} if isinstance(cp, str) else cp.model_dump(exclude_none=True) if cp else {}
    if checkpoint_id:
        out["checkpoint_id"] = checkpoint_id
    return out or None


@router.post("/threads")
async def create_thread(request: Request, body: ThreadCreate):
    thread = await service.create(
        runtime(request), caller(request), body.thread_id, metadata=body.metadata, if_exists=body.if_exists,
        ttl=body.ttl.model_dump() if body.ttl else None,
        supersteps=[s.model_dump() for s in body.supersteps] if body.supersteps else None,
    )
    return thread_json(thread)


@router.post("/threads/search")
async def search_threads(request: Request, response: Response, body: ThreadSearch):
    threads = await service.search(runtime(request), caller(request), **{**body.model_dump(), "limit": body.limit + 1})
    return [thread_json(t) for t in page(response, threads, body.offset, body.limit)]


@router.post("/threads/count")
async def count_threads(request: Request, body: ThreadFilter):
    return await service.count(runtime(request), caller(request), **body.model_dump())


@router.post("/threads/prune")
async def prune_threads(request: Request, body: ThreadPrune):
    return {"pruned_count": await service.prune(runtime(request), caller(request), body.thread_ids, body.strategy)}


@router.get("/threads/{thread_id}")
async def get_thread(request: Request, thread_id: UUID, include: str = ""):
    thread = await service.get(runtime(request), caller(request), thread_id, include_ttl="ttl" in include.split(","))
    return thread_json(thread)


@router.patch("/threads/{thread_id}")
async def patch_thread(request: Request, thread_id: UUID, body: ThreadPatch):
    ttl = body.ttl.model_dump() if body.ttl else None
    return thread_json(await service.update(runtime(request), caller(request), thread_id, metadata=body.metadata, ttl=ttl))


@router.delete("/threads/{thread_id}", status_code=204)
async def delete_thread(request: Request, thread_id: UUID):
    await service.delete(runtime(request), caller(request), thread_id)
    return no_content()


@router.post("/threads/{thread_id}/copy")
async def copy_thread(request: Request, thread_id: UUID):
    return thread_json(await service.copy(runtime(request), caller(request), thread_id))


@router.get("/threads/{thread_id}/storage")
async def thread_storage(request: Request, thread_id: UUID):
    return await service.storage(runtime(request), caller(request), thread_id)


async def _state(request: Request, thread_id: UUID, checkpoint: dict | None = None, subgraphs: bool = False) -> dict:
    return state_json(*await service.get_state(runtime(request), caller(request), thread_id, checkpoint, subgraphs))


@router.get("/threads/{thread_id}/state")
async def get_state(request: Request, thread_id: UUID, subgraphs: bool = False):
    return await _state(request, thread_id, subgraphs=subgraphs)


@router.post("/threads/{thread_id}/state")
async def update_state(request: Request, thread_id: UUID, body: StateUpdate):
    config = await service.update_state(
        runtime(request), caller(request), thread_id, body.values, as_node=body.as_node,
        checkpoint=_checkpoint(body.checkpoint, body.checkpoint_id),
    )
    return update_json(config)


@router.post("/threads/{thread_id}/state/checkpoint")
async def get_state_at(request: Request, thread_id: UUID, body: StateAtCheckpoint):
    return await _state(request, thread_id, _checkpoint(body.checkpoint), body.subgraphs)


@router.get("/threads/{thread_id}/state/{checkpoint_id}")
async def get_state_at_id(request: Request, thread_id: UUID, checkpoint_id: str, subgraphs: bool = False):
    return await _state(request, thread_id, {"checkpoint_id": checkpoint_id}, subgraphs)


@router.get("/threads/{thread_id}/history")
async def get_history(
    request: Request, thread_id: UUID, limit: int = Query(1, ge=1, le=1000), before: str | None = None
):
    return await post_history(request, thread_id, HistoryQuery(limit=limit, before=before))


@router.post("/threads/{thread_id}/history")
async def post_history(request: Request, thread_id: UUID, body: HistoryQuery):
    snapshots = await service.history(
        runtime(request), caller(request), thread_id, limit=body.limit, before=_checkpoint(body.before),
        metadata=body.metadata, checkpoint=_checkpoint(body.checkpoint),
    )
    return [snapshot_json(s) for s in snapshots]


STREAM_ID = re.compile(r"^\d+(-(\d+|\*))?$")  # the ids of thread stream events: <ms>-<seq>


@router.get("/threads/{thread_id}/stream", response_class=EventStream, status_code=200)
async def join_thread_stream(
    request: Request, thread_id: UUID, stream_modes: str | None = None, stream_mode: list[str] = Query(["run_modes"])
):
    """The output of every run on the thread from now on, one after another, and its state updates, until the
    client leaves. `stream_modes` (the official server's: comma-separated run_modes, lifecycle, state_update)
    wins over `stream_mode` (what the SDK sends: those, or stream modes of the runs to keep)."""
    last_event_id = request.headers.get("last-event-id")
    if last_event_id and last_event_id != "-" and not STREAM_ID.match(last_event_id):
        raise Invalid("Invalid last-event-id: must be a valid Redis stream ID")
    if stream_modes:
        modes = {mode.strip() for mode in stream_modes.split(",")}
        for mode in sorted(modes - run_service.THREAD_MODES):
            raise Invalid(f"Invalid stream mode: {mode}")
    else:
        modes = set(stream_mode) | ({"messages"} if "messages-tuple" in stream_mode else set())
    return sse_response(
        await run_service.thread_events(runtime(request), caller(request), thread_id, modes, state_json)
    )
