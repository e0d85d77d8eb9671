"""Assistants: a graph plus configuration, versioned."""
from __future__ import annotations

from typing import Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from ..errors import NotFound
from ..graphs import graph_schemas
from .common import JSONResponse, no_content, resolve_assistant_id, runtime

router = APIRouter(tags=["assistants"], default_response_class=JSONResponse)

AssistantColumn = Literal[
    "assistant_id", "graph_id", "name", "description", "config", "context", "created_at", "updated_at",
    "metadata", "version",
]


class AssistantCreate(BaseModel):
    assistant_id: UUID | None = None
    graph_id: str
    config: dict = Field(default_factory=dict)
    context: dict = Field(default_factory=dict)
    metadata: dict = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    name: str | None = None
    description: str | None = None


class AssistantPatch(BaseModel):
    graph_id: str | None = None
    config: dict | None = None
    context: dict | None = None
    metadata: dict | None = None
    name: str | None = None
    description: str | None = None


class AssistantSearch(BaseModel):
    metadata: dict | None = None
    graph_id: str | None = None
    name: str | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[AssistantColumn] | None = None


class AssistantCount(BaseModel):
    metadata: dict | None = None
    graph_id: str | None = None
    name: str | None = None


class VersionSearch(BaseModel):
    metadata: dict | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class SetLatest(BaseModel):
    version: int


def _check_graph(request: Request, graph_id: str) -> None:
    if graph_id not in runtime(request).graphs:
        raise NotFound(f"Graph '{graph_id}' not found")


@router.post("/assistants")
async def create_assistant(request: Request, body: AssistantCreate):
    _check_graph(request, body.graph_id)
    return await runtime(request).assistants.create(
        body.assistant_id or uuid4(), body.graph_id, config=body.config, context=body.context,
        metadata=body.metadata, name=body.name or "Untitled", description=body.description,
        if_exists=body.if_exists,
    )


@router.post("/assistants/search")
async def search_assistants(request: Request, body: AssistantSearch):
    return await runtime(request).assistants.search(**body.model_dump())


@router.post("/assistants/count")
async def count_assistants(request: Request, body: AssistantCount):
    return await runtime(request).assistants.count(**body.model_dump())


@router.get("/assistants/{assistant_id}")
async def get_assistant(request: Request, assistant_id: str):
    rt = runtime(request)
    return await rt.assistants.get(resolve_assistant_id(rt, assistant_id))


@router.patch("/assistants/{assistant_id}")
async def patch_assistant(request: Request, assistant_id: UUID, body: AssistantPatch):
    if body.graph_id is not None:
        _check_graph(request, body.graph_id)
    return await runtime(request).assistants.update(assistant_id, body.model_dump())


@router.delete("/assistants/{assistant_id}", status_code=204)
async def delete_assistant(request: Request, assistant_id: UUID):
    await runtime(request).assistants.delete(assistant_id)
    return no_content()


@router.post("/assistants/{assistant_id}/versions")
async def list_versions(request: Request, assistant_id: UUID, body: VersionSearch):
    return await runtime(request).assistants.versions(assistant_id, **body.model_dump())


@router.post("/assistants/{assistant_id}/latest")
async def set_latest(request: Request, assistant_id: UUID, body: SetLatest):
    return await runtime(request).assistants.set_latest(assistant_id, body.version)


async def _graph(request: Request, assistant_id: str):
    rt = runtime(request)
    assistant = await rt.assistants.get(resolve_assistant_id(rt, assistant_id))
    return assistant, await rt.graphs.get(assistant["graph_id"], assistant["config"])


@router.get("/assistants/{assistant_id}/graph")
async def get_graph(request: Request, assistant_id: str, xray: str = "false"):
    _, graph = await _graph(request, assistant_id)
    level: int | bool = int(xray) if xray.isdigit() else xray.lower() == "true"
    return (await graph.aget_graph(xray=level)).to_json()


@router.get("/assistants/{assistant_id}/schemas")
async def get_schemas(request: Request, assistant_id: str):
    assistant, graph = await _graph(request, assistant_id)
    return {"graph_id": assistant["graph_id"], **graph_schemas(graph)}


@router.get("/assistants/{assistant_id}/subgraphs")
@router.get("/assistants/{assistant_id}/subgraphs/{namespace}")
async def get_subgraphs(request: Request, assistant_id: str, namespace: str | None = None, recurse: bool = False):
    _, graph = await _graph(request, assistant_id)
    return {ns: graph_schemas(sub) async for ns, sub in graph.aget_subgraphs(namespace=namespace, recurse=recurse)}
