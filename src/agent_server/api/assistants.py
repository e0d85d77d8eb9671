"""Assistants: a graph plus configuration, versioned.

As in the official server, path ids must be UUIDs (422 otherwise), except for drawing a graph,
where a graph id stands for that graph's default assistant."""
from __future__ import annotations

from typing import Awaitable, Literal, TypeVar
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from ..errors import Invalid, NotFound
from ..graphs import default_assistant_id
from ..services import assistants as service
from .common import JSONResponse, RunConfig, caller, no_content, page, runtime

T = TypeVar("T")
router = APIRouter(tags=["assistants"], default_response_class=JSONResponse)

AssistantColumn = Literal[
    "assistant_id", "graph_id", "name", "description", "config", "context", "created_at", "updated_at",
    "metadata", "version",
]
class AssistantCreate(BaseModel):
    assistant_id: UUID | None = None
    graph_id: str
    config: RunConfig = Field(default_factory=dict)
    context: dict = Field(default_factory=dict)
    metadata: dict = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    name: str | None = None
    description: str | None = None


class AssistantPatch(BaseModel):
    graph_id: str | None = None
    config: RunConfig | None = None
    context: dict | None = None
    metadata: dict | None = None
    name: str | None = None
    description: str | None = None


class AssistantFilter(BaseModel):
    metadata: dict | None = None
    graph_id: str | None = None
    name: str | None = None


class AssistantSearch(AssistantFilter):
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: Literal["assistant_id", "created_at", "updated_at", "name", "graph_id"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[AssistantColumn] | None = None


class VersionSearch(BaseModel):
    metadata: dict | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class SetLatest(BaseModel):
    version: int


@router.post("/assistants")
async def create_assistant(request: Request, body: AssistantCreate):
    return await service.create(
        runtime(request), caller(request), body.assistant_id, body.graph_id, config=body.config, context=body.context,
        metadata=body.metadata, name=body.name, description=body.description, if_exists=body.if_exists,
    )


@router.post("/assistants/search")
async def search_assistants(request: Request, body: AssistantSearch, response: Response):
    rows = await service.search(runtime(request), caller(request), **{**body.model_dump(), "limit": body.limit + 1})
    return page(response, rows, body.offset, body.limit)


@router.post("/assistants/count")
async def count_assistants(request: Request, body: AssistantFilter):
    return await service.count(runtime(request), caller(request), **body.model_dump())


@router.get("/assistants/{assistant_id}")
async def get_assistant(request: Request, assistant_id: UUID):
    return await _bare_404(service.get(runtime(request), caller(request), assistant_id))


@router.patch("/assistants/{assistant_id}")
async def patch_assistant(request: Request, assistant_id: UUID, body: AssistantPatch):
    return await service.update(runtime(request), caller(request), assistant_id, body.model_dump())


@router.delete("/assistants/{assistant_id}", status_code=204)
async def delete_assistant(request: Request, assistant_id: UUID, delete_threads: bool = False):
    await service.delete(runtime(request), caller(request), assistant_id, delete_threads=delete_threads)
    return no_content()


@router.post("/assistants/{assistant_id}/versions")
async def list_versions(request: Request, assistant_id: UUID, body: VersionSearch):
    return await service.versions(runtime(request), caller(request), assistant_id, **body.model_dump())


@router.post("/assistants/{assistant_id}/latest")
async def set_latest(request: Request, assistant_id: UUID, body: SetLatest):
    return await service.set_latest(runtime(request), caller(request), assistant_id, body.version)


async def _bare_404(found: Awaitable[T]) -> T:
    """Reading endpoints answer a bare 'Not Found' for an unknown id, as the official server does."""
    try:
        return await found
    except NotFound:
        raise NotFound("Not Found") from None


def _xray(value: str) -> int | bool:
    if value in ("true", "True"):
        return True
    if value in ("", "false", "False"):
        return False
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise Invalid("Invalid xray value")


@router.get("/assistants/{assistant_id}/graph")
async def get_graph(request: Request, assistant_id: str, xray: str = "false"):
    level = _xray(xray)
    rt = runtime(request)
    try:
        uuid = UUID(assistant_id)
    except ValueError:
        if assistant_id not in rt.graphs:
            raise Invalid("Invalid assistant ID: must be a UUID") from None
        uuid = default_assistant_id(assistant_id)
    _, graph = await _bare_404(service.graph(rt, caller(request), uuid))
    drawing = (await graph.aget_graph(xray=level)).to_json()
    for node in drawing["nodes"]:  # the official drawing names runnables without their class path
        if node.get("type") == "runnable":
            node["data"].pop("id", None)
    return drawing


@router.get("/assistants/{assistant_id}/schemas")
async def get_schemas(request: Request, assistant_id: UUID):
    return await _bare_404(service.schemas(runtime(request), caller(request), assistant_id))


def _flag(value: str) -> bool:
    return value.lower() in ("true", "1", "yes")


@router.get("/assistants/{assistant_id}/subgraphs")
@router.get("/assistants/{assistant_id}/subgraphs/{namespace}")
async def get_subgraphs(request: Request, assistant_id: UUID, namespace: str | None = None, recurse: str = "false"):
    return await _bare_404(service.subgraphs(runtime(request), caller(request), assistant_id, namespace, _flag(recurse)))
