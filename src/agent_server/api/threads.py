"""Threads: metadata, status, state and history."""
from __future__ import annotations

from typing import Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from .. import runs as run_service
from .. import state
from ..errors import Invalid
from .common import JSONResponse, no_content, page, runtime
from .sse import sse_response

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


def _thread_json(row: dict) -> dict:
    """As the official server: `error` and `interrupts` appear once the thread has had some state."""
    if row.get("values") is None and row.get("error") is None and not row.get("interrupts"):
        return {k: v for k, v in row.items() if k not in ("error", "interrupts")}
    return row


def _checkpoint(cp: Checkpoint | str | None, checkpoint_id: str | None = None) -> dict | None:
    out = {"checkpoint_id": cp} if isinstance(cp, str) else cp.model_dump(exclude_none=True) if cp else {}
    if checkpoint_id:
        out["checkpoint_id"] = checkpoint_id
    return out or None


@router.post("/threads")
async def create_thread(request: Request, body: ThreadCreate):
    rt = runtime(request)
    thread_id = body.thread_id or uuid4()
    graph_id = body.metadata.get("graph_id")
    if body.supersteps and graph_id not in rt.graphs:
        raise Invalid("supersteps need metadata.graph_id naming one of this server's graphs")
    ttl = body.ttl.model_dump() if body.ttl else None
    thread, created = await rt.threads.create(thread_id, metadata=body.metadata, if_exists=body.if_exists, ttl=ttl)
    if body.supersteps and created:  # only the request that made the thread fills it
        try:
            await state.bulk_update(rt, thread_id, graph_id, [s.model_dump() for s in body.supersteps])
        except Exception:
            await run_service.delete_thread(rt, thread_id)  # all or nothing
            raise
        thread = await rt.threads.get(thread_id)
    return _thread_json(thread)


@router.post("/threads/search")
async def search_threads(request: Request, response: Response, body: ThreadSearch):
    threads = await runtime(request).threads.search(**{**body.model_dump(), "limit": body.limit + 1})
    return [_thread_json(t) for t in page(response, threads, body.offset, body.limit)]


@router.post("/threads/count")
async def count_threads(request: Request, body: ThreadFilter):
    return await runtime(request).threads.count(**body.model_dump())


@router.post("/threads/prune")
async def prune_threads(request: Request, body: ThreadPrune):
    rt = runtime(request)
    existing = await rt.threads.existing(list(dict.fromkeys(body.thread_ids)))
    if body.strategy == "delete":
        for thread_id in existing:
            await run_service.delete_thread(rt, thread_id)
    else:
        await rt.checkpointer.aprune([str(t) for t in existing], strategy="keep_latest")
    return {"pruned_count": len(existing)}


@router.get("/threads/{thread_id}")
async def get_thread(request: Request, thread_id: UUID, include: str = ""):
    return _thread_json(await runtime(request).threads.get(thread_id, include_ttl="ttl" in include.split(",")))


@router.patch("/threads/{thread_id}")
async def patch_thread(request: Request, thread_id: UUID, body: ThreadPatch):
    ttl = body.ttl.model_dump() if body.ttl else None
    return _thread_json(await runtime(request).threads.update(thread_id, metadata=body.metadata, ttl=ttl))


@router.delete("/threads/{thread_id}", status_code=204)
async def delete_thread(request: Request, thread_id: UUID):
    await run_service.delete_thread(runtime(request), thread_id)
    return no_content()


@router.post("/threads/{thread_id}/copy")
async def copy_thread(request: Request, thread_id: UUID):
    return _thread_json(await runtime(request).threads.copy(thread_id, uuid4()))


@router.get("/threads/{thread_id}/storage")
async def thread_storage(request: Request, thread_id: UUID):
    return await runtime(request).threads.storage(thread_id)


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
    request: Request, thread_id: UUID, limit: int = Query(1, ge=1, le=1000), before: str | None = None
):
    return await post_history(request, thread_id, HistoryQuery(limit=limit, before=before))


@router.post("/threads/{thread_id}/history")
async def post_history(request: Request, thread_id: UUID, body: HistoryQuery):
    return await state.history(
        runtime(request), thread_id, limit=body.limit, before=_checkpoint(body.before),
        metadata=body.metadata, checkpoint=_checkpoint(body.checkpoint),
    )


@router.get("/threads/{thread_id}/stream")
async def join_thread_stream(request: Request, thread_id: UUID, stream_mode: list[str] = Query(["run_modes"])):
    """The output of every run on the thread from now on, one after another, until the client leaves."""
    rt = runtime(request)
    await rt.threads.get(thread_id)
    modes = None
    if "run_modes" not in stream_mode:  # those modes only; a run's metadata and errors always
        modes = {"metadata", "error", *stream_mode} | ({"messages"} if "messages-tuple" in stream_mode else set())
    return sse_response(run_service.thread_events(rt, thread_id, modes))
