"""Cron jobs: on a thread or stateless; search, count, read, update, delete."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, field_validator

from ..errors import Invalid, NotFound
from ..services import crons as service
from ..storage.crons import COLUMNS, SORTABLE
from .common import JSONResponse, caller, no_content, page, resolve_assistant_id, runtime
from .runs import RunCreate

router = APIRouter(tags=["crons"], default_response_class=JSONResponse)


class CronCreate(RunCreate):
    """A run's fields (checked as a run's are), and the cron's own."""

    schedule: str
    timezone: str | None = None
    end_time: datetime | None = None
    enabled: bool = True
    on_run_completed: Literal["delete", "keep"] | None = None  # stateless crons only

    @field_validator("end_time")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        """A time without a zone is UTC."""
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class CronPatch(CronCreate):
    """Every field optional; `end_time: null` clears it."""

    assistant_id: str | None = None
    schedule: str | None = None
    enabled: bool | None = None


class CronSearch(BaseModel):
    assistant_id: str | None = None
    thread_id: UUID | None = None
    enabled: bool | None = None
    metadata: dict | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: Literal[tuple(sorted(SORTABLE))] | None = None  # type: ignore[valid-type]
    sort_order: Literal["asc", "desc"] | None = None
    select: list[Literal[tuple(COLUMNS)]] | None = None  # type: ignore[valid-type]


class CronCount(BaseModel):
    assistant_id: str | None = None
    thread_id: UUID | None = None
    metadata: dict | None = None


async def _create(request: Request, thread_id: UUID | None, body: CronCreate) -> dict:
    rt = runtime(request)
    payload: dict[str, Any] = body.model_dump(mode="json", exclude_none=True, exclude_unset=True)
    try:
        assistant_id = resolve_assistant_id(rt, body.assistant_id)
    except Invalid:  # neither an id nor a graph: for a cron, the official server says it is not found
        raise NotFound(f"Assistant '{body.assistant_id}' not found") from None
    return await service.create(
        rt, caller(request), thread_id, assistant_id, payload,
        schedule=body.schedule, timezone=body.timezone, end_time=body.end_time, enabled=body.enabled,
        on_run_completed=body.on_run_completed if thread_id is None else None,
    )


@router.post("/threads/{thread_id}/runs/crons")
async def create_thread_cron(request: Request, thread_id: UUID, body: CronCreate):
    return await _create(request, thread_id, body)


@router.post("/runs/crons")
async def create_cron(request: Request, body: CronCreate):
    return await _create(request, None, body)


@router.post("/runs/crons/search")
async def search_crons(request: Request, response: Response, body: CronSearch):
    rt = runtime(request)
    assistant_id = resolve_assistant_id(rt, body.assistant_id) if body.assistant_id else None
    rows = await service.search(
        rt, caller(request), assistant_id=assistant_id, thread_id=body.thread_id, enabled=body.enabled,
        metadata=body.metadata, limit=body.limit + 1, offset=body.offset, sort_by=body.sort_by,
        sort_order=body.sort_order, select=body.select,
    )
    return page(response, rows, body.offset, body.limit)


@router.post("/runs/crons/count")
async def count_crons(request: Request, body: CronCount):
    rt = runtime(request)
    assistant_id = resolve_assistant_id(rt, body.assistant_id) if body.assistant_id else None
    return await service.count(
        rt, caller(request), assistant_id=assistant_id, thread_id=body.thread_id, metadata=body.metadata
    )


@router.get("/runs/crons/{cron_id}")
async def get_cron(request: Request, cron_id: UUID):
    return await service.get(runtime(request), caller(request), cron_id)


@router.patch("/runs/crons/{cron_id}")
async def update_cron(request: Request, cron_id: UUID, body: CronPatch):
    changes = body.model_dump(mode="json", exclude_unset=True)
    changes.pop("assistant_id", None)  # a cron keeps its assistant
    changes = {k: v for k, v in changes.items() if v is not None or k == "end_time"}
    if "end_time" in changes:
        changes["end_time"] = body.end_time
    return await service.update(runtime(request), caller(request), cron_id, changes)


@router.delete("/runs/crons/{cron_id}", status_code=204)
async def delete_cron(request: Request, cron_id: UUID):
    await service.delete(runtime(request), caller(request), cron_id)
    return no_content()
