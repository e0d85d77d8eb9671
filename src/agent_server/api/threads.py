"""Threads: metadata, status, state and history."""
from __future__ import annotations

from typing import Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from .. import runs as run_service
from .. import state
from ..errors import Invalid
from .common import JSONResponse, no_content, runtime

router = APIRouter(tags=["threads"], default_response_class=JSONResponse)

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
ThreadColumn = Literal[
    "thread_id", "created_at", "updated_at", "metadata", "config", "status", "values", "interrupts", "error",
]


class TTL(BaseModel):
    strategy: Literal["delete"] = "delete"
    ttl: float = Field(gt=0, description="minutes")


class Superstep(BaseModel):
    updates: list[dict[str, Any]]


class ThreadCreate(BaseModel):
    thread_id: UUID | None = None
    metadata: dict = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    supersteps: list[Superstep] | None = None
    ttl: TTL | None = None


class ThreadPatch(BaseModel):
    metadata: dict = Field(default_factory=dict)
    ttl: TTL | None = None


class ThreadSearch(BaseModel):
    ids: list[UUID] | None = None
    metadata: dict | None = None
    values: dict | None = None
    status: ThreadStatus | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[ThreadColumn] | None = None


class ThreadCount(BaseModel):
    ids: list[UUID] | None = None
    metadata: dict | None = None
    values: dict | None = None
    status: ThreadStatus | None = None


class ThreadPrune(BaseModel):
    thread_ids: list[UUID]
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
    limit: int = Field(10, ge=1, le=1000)
    before: Checkpoint | str | None = None
    metadata: dict | None = None
    checkpoint: Checkpoint | None = None


def _checkpoint(cp: Checkpoint | None, checkpoint_id: str | None = None) -> dict | None:
    out = cp.model_dump(exclude_none=True) if cp else {}
    if checkpoint_id:
        out["checkpoint_id"] = checkpoint_id
    return out or None


@router.post("/threads")
async def create_thread(request: Request, body: ThreadCreate):
    rt = runtime(request)
    thread_id = body.thread_id or uuid4()
    if body.supersteps:
        graph_id = body.metadata.get("graph_id")
        if graph_id not in rt.graphs:
            raise Invalid("supersteps need metadata.graph_id naming one of this server's graphs")
    thread = await rt.threads.create(
        thread_id, metadata=body.metadata, if_exists=body.if_exists, ttl_minutes=body.ttl.ttl if body.ttl else None
    )
    if body.supersteps:
        await state.bulk_update(rt, thread_id, body.metadata["graph_id"], [s.model_dump() for s in body.supersteps])
        thread = await rt.threads.get(thread_id)
    return thread


@router.post("/threads/search")
async def search_threads(request: Request, body: ThreadSearch):
    return await runtime(request).threads.search(**body.model_dump())


@router.post("/threads/count")
async def count_threads(request: Request, body: ThreadCount):
    return await runtime(request).threads.count(**body.model_dump())


@router.post("/threads/prune")
async def prune_threads(request: Request, body: ThreadPrune):
    rt = runtime(request)
    if body.strategy == "delete":
        pruned = 0
        for thread_id in body.thread_ids:
            if await rt.threads.exists(thread_id):
                await run_service.delete_thread(rt, thread_id)
                pruned += 1
        return {"pruned_count": pruned}
    existing = [t["thread_id"] for t in await rt.threads.search(ids=body.thread_ids, limit=len(body.thread_ids))]
    await rt.checkpointer.aprune([str(t) for t in existing], strategy="keep_latest")
    return {"pruned_count": len(existing)}


@router.get("/threads/{thread_id}")
async def get_thread(request: Request, thread_id: UUID):
    return await runtime(request).threads.get(thread_id)


@router.patch("/threads/{thread_id}")
async def patch_thread(request: Request, thread_id: UUID, body: ThreadPatch):
    return await runtime(request).threads.update(
        thread_id, metadata=body.metadata, ttl_minutes=body.ttl.ttl if body.ttl else None
    )


@router.delete("/threads/{thread_id}", status_code=204)
async def delete_thread(request: Request, thread_id: UUID):
    await run_service.delete_thread(runtime(request), thread_id)
    return no_content()


@router.post("/threads/{thread_id}/copy")
async def copy_thread(request: Request, thread_id: UUID):
    return await runtime(request).threads.copy(thread_id, uuid4())


@router.get("/threads/{thread_id}/state")
async def get_state(request: Request, thread_id: UUID, subgraphs: bool = False):
    return await state.get_state(runtime(request), thread_id, subgraphs=subgraphs)


@router.post("/threads/{thread_id}/state")
async def update_state(request: Request, thread_id: UUID, body: StateUpdate):
    return await state.update_state(
        runtime(request), thread_id, body.values, as_node=body.as_node,
        checkpoint=_checkpoint(body.checkpoint, body.checkpoint_id),
    )


@router.post("/threads/{thread_id}/state/checkpoint")
async def get_state_at(request: Request, thread_id: UUID, body: StateAtCheckpoint):
    return await state.get_state(runtime(request), thread_id, _checkpoint(body.checkpoint), body.subgraphs)


@router.get("/threads/{thread_id}/state/{checkpoint_id}")
async def get_state_at_id(request: Request, thread_id: UUID, checkpoint_id: str, subgraphs: bool = False):
    return await state.get_state(runtime(request), thread_id, {"checkpoint_id": checkpoint_id}, subgraphs)


@router.get("/threads/{thread_id}/history")
async def get_history(
    request: Request, thread_id: UUID, limit: int = Query(10, ge=1, le=1000), before: str | None = None
):
    return await state.history(runtime(request), thread_id, limit=limit, before=before, metadata=None, checkpoint=None)


@router.post("/threads/{thread_id}/history")
async def post_history(request: Request, thread_id: UUID, body: HistoryQuery):
    before = body.before if isinstance(body.before, str) else _checkpoint(body.before)
    return await state.history(
        runtime(request), thread_id, limit=body.limit, before=before, metadata=body.metadata,
        checkpoint=_checkpoint(body.checkpoint),
    )
