"""Runs: background, wait, stream, join, cancel; on a thread or stateless."""
from __future__ import annotations

import asyncio
from typing import Annotated, Any, Awaitable, Literal, TypeVar
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from langgraph.checkpoint.base.id import uuid6
from pydantic import BaseModel, Field, field_validator, model_validator

from .. import runs as service
from ..errors import Invalid
from .common import JSONResponse, RunConfig, no_content, resolve_assistant_id, runtime
from .sse import EventStream

T = TypeVar("T")
router = APIRouter(tags=["runs"], default_response_class=JSONResponse)

StreamMode = Literal[
    "values", "updates", "messages", "messages-tuple", "custom", "events", "debug", "tasks", "checkpoints",
]
RunStatus = Literal["pending", "running", "success", "error", "timeout", "interrupted"]


class CommandModel(BaseModel):
    resume: Any = None
    update: Any = None
    goto: Any = None


class RunCreate(BaseModel):
    assistant_id: str
    input: Any = None
    command: CommandModel | None = None
    config: RunConfig = Field(default_factory=dict)
    context: dict | None = None
    metadata: dict = Field(default_factory=dict)
    stream_mode: list[StreamMode] = Field(default_factory=lambda: ["values"])
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    checkpoint: dict | None = None
    checkpoint_id: str | None = None
    checkpoint_during: bool | None = None
    durability: Literal["async", "sync", "exit"] | None = None
    multitask_strategy: Literal["reject", "interrupt", "rollback", "enqueue"] | None = None
    if_not_exists: Literal["create", "reject"] | None = None
    on_disconnect: Literal["cancel", "continue"] | None = None
    on_completion: Literal["delete", "keep"] | None = None
    after_seconds: float | None = Field(None, ge=0)
    webhook: str | None = None
    feedback_keys: list[str] | None = None

    @field_validator("stream_mode", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value


class CancelMany(BaseModel):
    """Either a thread and some of its runs, or every run in a status."""

    thread_id: UUID | None = None
    run_ids: list[UUID] | None = None
    status: Literal["pending", "running", "all"] | None = None

    @model_validator(mode="after")
    def _one_selection(self):
        by_ids = self.thread_id is not None and bool(self.run_ids)
        if (self.status is not None) != by_ids:
            return self
        raise ValueError("give either thread_id with run_ids, or status")


def _payload(body: RunCreate) -> dict:
    data = body.model_dump(exclude_none=True)
    if body.durability is None and body.checkpoint_during is False:
        data["durability"] = "exit"
    return data


async def _create(request: Request, thread_id: UUID | None, body: RunCreate, run_id: UUID | None = None) -> dict:
    rt = runtime(request)
    return await service.create_run(
        rt, run_id or uuid6(), thread_id, resolve_assistant_id(rt, body.assistant_id), _payload(body)
    )


def _location(run: dict, suffix: str) -> dict[str, str]:
    path = f"/threads/{run['thread_id']}/runs/{run['run_id']}"
    return {"Location": f"{path}/{suffix}", "Content-Location": path}


async def _subscribed(rt, run_id: UUID, then: Awaitable[T]) -> tuple[service.RunFollower, T]:
    """Subscribe to a run's events, then await what may start it (so no event is missed); the caller's
    stream unsubscribes when it ends, and a failure here does at once."""
    follower = await service.RunFollower(rt, run_id).__aenter__()
    try:
        return follower, await then
    except BaseException:
        await follower.__aexit__(None, None, None)
        raise


async def _stream(request: Request, thread_id: UUID | None, body: RunCreate):
    rt = runtime(request)
    run_id = uuid6()
    follower, run = await _subscribed(rt, run_id, _create(request, thread_id, body, run_id))
    # A resumable stream exists to be reconnected to: leaving it does not cancel the run by default.
    cancel_on_disconnect = (body.on_disconnect or ("continue" if body.stream_resumable else "cancel")) == "cancel"
    return _follow(rt, follower, cancel_on_disconnect, _location(run, "stream"))


def _follow(
    rt, follower: service.RunFollower, cancel_on_disconnect: bool, headers: dict[str, str], check_first=False,
    replay_after: int | None = None,
) -> EventStream:
    """The run's events as SSE. When the response is over, however it ended, unsubscribe; and if the client
    left before the end, cancel the run when asked to."""

    async def close():
        await follower.__aexit__(None, None, None)
        if cancel_on_disconnect and not follower.over:
            service.spawn_cancel(rt, follower.run_id)

    return EventStream(follower.events(check_first, replay_after), headers, on_close=close)


async def _until_disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T | None:
    """`work`'s result; None if the client disconnects first (`work` is then cancelled)."""
    task, gone = asyncio.ensure_future(work), asyncio.ensure_future(_until_disconnected(request))
    try:
        await asyncio.wait((task, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, gone, return_exceptions=True)
    return task.result() if not task.cancelled() else None


async def _wait(request: Request, thread_id: UUID | None, body: RunCreate):
    rt = runtime(request)
    run_id = uuid6()
    async with service.RunFollower(rt, run_id) as follower:
        run = await _create(request, thread_id, body, run_id)
        result = await _unless_disconnected(request, follower.wait())
    if result is None:
        # As on the official server, a waiter that leaves lets the run go on unless it asked otherwise.
        if body.on_disconnect == "cancel":
            await service.cancel_runs(rt, None, [run_id], "interrupt")
        return Response(status_code=499)  # nobody reads it; "client closed request" in the access log
    return JSONResponse(result.get("output"), headers=_location(run, "join"))


# ---- on a thread -----------------------------------------------------------------------------------

@router.post("/threads/{thread_id}/runs")
async def create_run(request: Request, thread_id: UUID, body: RunCreate):
    run = await _create(request, thread_id, body)
    return JSONResponse(run, headers={"Content-Location": f"/threads/{thread_id}/runs/{run['run_id']}"})


@router.post("/threads/{thread_id}/runs/stream")
async def stream_run(request: Request, thread_id: UUID, body: RunCreate):
    return await _stream(request, thread_id, body)


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(request: Request, thread_id: UUID, body: RunCreate):
    return await _wait(request, thread_id, body)


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    request: Request, thread_id: UUID, limit: int = Query(10, ge=1, le=1000), offset: int = Query(0, ge=0),
    status: RunStatus | None = None,
):
    rt = runtime(request)
    await rt.threads.get(thread_id)
    return await rt.runs.list(thread_id, status=status, limit=limit, offset=offset)


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(request: Request, thread_id: UUID, run_id: UUID):
    return await runtime(request).runs.get(run_id, thread_id)


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204)
async def delete_run(request: Request, thread_id: UUID, run_id: UUID):
    await runtime(request).runs.delete(run_id, thread_id)
    return no_content()


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(request: Request, thread_id: UUID, run_id: UUID):
    rt = runtime(request)
    async with service.RunFollower(rt, run_id) as follower:
        run = await rt.runs.get(run_id, thread_id)
        result = await follower.wait(check_first=True)
    return JSONResponse(result.get("output"), headers=_location(run, "join"))


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_stream(
    request: Request, thread_id: UUID, run_id: UUID, cancel_on_disconnect: bool = False,
    last_event_id: str | None = Header(None),
):
    """Live events from now on; with Last-Event-ID on a resumable run, first every event after it."""
    rt = runtime(request)
    follower, run = await _subscribed(rt, run_id, rt.runs.get(run_id, thread_id))
    replay_after = None
    if last_event_id is not None and run["kwargs"].get("resumable"):
        try:
            replay_after = int(last_event_id)
        except ValueError:
            await follower.__aexit__(None, None, None)
            raise Invalid(f"Last-Event-ID must be an event id, not {last_event_id!r}") from None
    return _follow(rt, follower, cancel_on_disconnect, _location(run, "stream"), True, replay_after)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(
    request: Request, thread_id: UUID, run_id: UUID, wait: bool = False,
    action: Literal["interrupt", "rollback"] = "interrupt",
):
    rt = runtime(request)
    async with service.RunFollower(rt, run_id) as follower:
        await service.cancel_runs(rt, thread_id, [run_id], action, must_match=True)
        if wait:
            await follower.wait(check_first=True)
    return JSONResponse({}) if wait else Response(status_code=202)


# ---- stateless -------------------------------------------------------------------------------------

@router.post("/runs")
async def create_stateless_run(request: Request, body: RunCreate):
    run = await _create(request, None, body)
    return JSONResponse(run, headers={"Content-Location": f"/runs/{run['run_id']}"})


@router.post("/runs/stream")
async def stream_stateless_run(request: Request, body: RunCreate):
    return await _stream(request, None, body)


@router.post("/runs/wait")
async def wait_stateless_run(request: Request, body: RunCreate):
    return await _wait(request, None, body)


@router.post("/runs/batch")
async def batch_runs(request: Request, body: Annotated[list[RunCreate], Field(min_length=1)]):
    return [await _create(request, None, item) for item in body]


@router.post("/runs/cancel", status_code=204)
async def cancel_many(request: Request, body: CancelMany, action: Literal["interrupt", "rollback"] = "interrupt"):
    status = None if body.status in (None, "all") else body.status
    await service.cancel_runs(runtime(request), body.thread_id, body.run_ids, action, status, must_match=True)
    return no_content()

