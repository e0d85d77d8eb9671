"""Runs: background, wait, stream, join, cancel; on a thread or stateless."""
from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, Field, field_validator, model_validator

from ..errors import Invalid
from ..services import Context
from ..services import runs as service
from ..status import RunStatus
from .common import JSONResponse, RunConfig, caller, no_content, resolve_assistant_id, runtime
from .sse import EventStream

router = APIRouter(tags=["runs"], default_response_class=JSONResponse)

StreamMode = Literal[
    "values", "updates", "messages", "messages-tuple", "custom", "events", "debug", "tasks", "checkpoints",
]


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

    @field_validator("webhook")
    @classmethod
    def _http_webhook(cls, value):
        if value is not None:
            url = urlsplit(value)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise ValueError(f"webhook must be an http(s) URL with a host, not {value!r}")
        return value


class CancelMany(BaseModel):
    """Either a thread and some of its runs, or every run in a status (server-wide: with neither)."""

    thread_id: UUID | None = None
    run_ids: list[UUID] | None = None
    status: Literal["pending", "running", "all"] | None = None

    @model_validator(mode="after")
    def _one_selection(self):
        if self.status is None and (self.thread_id is None or self.run_ids is None):
            raise ValueError("give either thread_id with run_ids, or status")
        return self

    def check(self) -> None:
        if self.status is not None and (self.thread_id is not None or self.run_ids is not None):
            raise Invalid(
                "When providing a 'status', 'thread_id' and 'run_ids' must be omitted. The 'status' parameter "
                "cancels all runs with the given status, regardless of thread or run ID."
            )


def _location(run: dict, suffix: str) -> dict[str, str]:
    path = f"/threads/{run['thread_id']}/runs/{run['run_id']}"
    return {"Location": f"{path}/{suffix}", "Content-Location": path}


def _args(request: Request, body: RunCreate) -> tuple:
    """What every run-creating service function takes from a request: runtime, caller, assistant, payload."""
    rt = runtime(request)
    return rt, caller(request), resolve_assistant_id(rt, body.assistant_id), body.model_dump(exclude_none=True)


async def _create(request: Request, thread_id: UUID | None, body: RunCreate) -> dict:
    rt, ctx, assistant_id, payload = _args(request, body)
    return await service.create(rt, ctx, thread_id, assistant_id, payload)


def _events(
    rt, ctx: Context, follower: service.RunFollower, cancel_on_disconnect: bool, headers: dict[str, str],
    check_first=False, replay_after: int | None = None, modes: list[str] | None = None,
) -> EventStream:
    """The run's events as SSE. When the response is over, however it ended, unsubscribe; and if the client
    left before the end, cancel the run when asked to."""

    async def close():
        await follower.__aexit__(None, None, None)
        if cancel_on_disconnect and not follower.over:
            service.spawn_cancel(rt, ctx, follower.run_id)

    return EventStream(follower.events(check_first, replay_after), headers, on_close=close, ready=follower.ready,
                       keep=service.of_modes(modes))


async def _stream(request: Request, thread_id: UUID | None, body: RunCreate) -> EventStream:
    rt, ctx, assistant_id, payload = _args(request, body)
    run, follower = await service.stream(rt, ctx, thread_id, assistant_id, payload)
    return _events(rt, ctx, follower, service.cancels_on_disconnect(payload), _location(run, "stream"))


async def _until_disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _wait(request: Request, thread_id: UUID | None, body: RunCreate):
    rt, ctx, assistant_id, payload = _args(request, body)
    run, result = await service.wait(rt, ctx, thread_id, assistant_id, payload, _until_disconnected(request))
    if result is None:
        return Response(status_code=499)  # nobody reads it; "client closed request" in the access log
    return JSONResponse(result.get("output"), headers=_location(run, "join"))


# ---- on a thread -----------------------------------------------------------------------------------

@router.post("/threads/{thread_id}/runs")
async def create_run(request: Request, thread_id: UUID, body: RunCreate):
    run = await _create(request, thread_id, body)
    return JSONResponse(run, headers={"Content-Location": f"/threads/{thread_id}/runs/{run['run_id']}"})


@router.post("/threads/{thread_id}/runs/stream", response_class=EventStream, status_code=200)
async def stream_run(request: Request, thread_id: UUID, body: RunCreate):
    return await _stream(request, thread_id, body)


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(request: Request, thread_id: UUID, body: RunCreate):
    return await _wait(request, thread_id, body)


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    request: Request, thread_id: UUID, limit: int = Query(10, ge=1, le=1000), offset: int = Query(0, ge=0),
    status: RunStatus | None = None, select: list[str] | None = Query(None),
):
    return await service.list_runs(
        runtime(request), caller(request), thread_id, status=status, limit=limit, offset=offset, select=select
    )


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(request: Request, thread_id: UUID, run_id: UUID):
    return await service.get(runtime(request), caller(request), thread_id, run_id)


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204)
async def delete_run(request: Request, thread_id: UUID, run_id: UUID):
    await service.delete(runtime(request), caller(request), thread_id, run_id)
    return no_content()


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(request: Request, thread_id: UUID, run_id: UUID):
    run, result = await service.join(runtime(request), caller(request), thread_id, run_id)
    return JSONResponse(result.get("output"), headers=_location(run, "join"))


@router.get("/threads/{thread_id}/runs/{run_id}/stream", response_class=EventStream, status_code=200)
async def join_stream(
    request: Request, thread_id: UUID, run_id: UUID, cancel_on_disconnect: bool = False,
    stream_mode: list[StreamMode | Literal[""]] | None = Query(None), last_event_id: str | None = Header(None),
):
    """Live events from now on; with Last-Event-ID on a resumable run, first every event after it; with
    stream_mode, only the events of those modes (the SDK sends an empty one for none)."""
    modes = [mode for mode in stream_mode or () if mode]
    rt, ctx = runtime(request), caller(request)
    run, follower, replay_after = await service.join_stream(rt, ctx, thread_id, run_id, last_event_id)
    return _events(rt, ctx, follower, cancel_on_disconnect, _location(run, "stream"), True, replay_after, modes)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(
    request: Request, thread_id: UUID, run_id: UUID, wait: bool = False,
    action: Literal["interrupt", "rollback"] = "interrupt",
):
    await service.cancel_one(runtime(request), caller(request), thread_id, run_id, action, wait)
    return JSONResponse({}) if wait else Response(status_code=202)


# ---- stateless -------------------------------------------------------------------------------------

@router.post("/runs")
async def create_stateless_run(request: Request, body: RunCreate):
    run = await _create(request, None, body)
    return JSONResponse(run, headers={"Content-Location": f"/runs/{run['run_id']}"})


@router.post("/runs/stream", response_class=EventStream, status_code=200)
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
    body.check()
    status = None if body.status in (None, "all") else body.status
    await service.cancel(runtime(request), caller(request), body.thread_id, body.run_ids, action, status, must_match=True)
    return no_content()


# ---- ours: not in the official API -----------------------------------------------------------------

@router.get("/queue")
async def queue(request: Request, limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0)):
    """Pending and running runs across threads, in queue order, with their ages and the worker holding each
    running one (`worker`, its lease owner); `pending` and `running` count all of them, past this page too.
    Filtered by custom auth as every run read is."""
    return await service.queue(runtime(request), caller(request), limit=limit, offset=offset)
