"""Assistants: a graph plus configuration, versioned.

As in the official server, path ids must be UUIDs (422 otherwise), except for drawing a graph,
where a graph id stands for that graph's default assistant."""
from __future__ import annotations

from typing import Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from .. import runs as run_service
from ..errors import BOTH_CONFIGURABLE_AND_CONTEXT, BadRequest, Invalid, NotFound
from ..graphs import default_assistant_id, graph_schemas
from .common import JSONResponse, RunConfig, no_content, page, runtime

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


def _check_graph(request: Request, graph_id: str | None) -> None:
    ids = runtime(request).graphs.ids()
    if graph_id is not None and graph_id not in ids:
        raise NotFound(f"Graph '{graph_id}' not found. Expected one of: {sorted(ids)}")


def _mirror(config: dict | None, context: dict | None) -> tuple[dict | None, dict | None]:
    """`config.configurable` and `context` are two views of one thing: set one, both follow."""
    configurable = (config or {}).get("configurable")
    if configurable and context:
        raise BadRequest(BOTH_CONFIGURABLE_AND_CONTEXT)
    if configurable:
        return config, configurable
    if context:
        return {**(config or {}), "configurable": context}, context
    return config, context


@router.post("/assistants")
async def create_assistant(request: Request, body: AssistantCreate):
    _check_graph(request, body.graph_id)
    config, context = _mirror(body.config, body.context)
    return await runtime(request).assistants.create(
        body.assistant_id or uuid4(), body.graph_id, config=config, context=context, metadata=body.metadata,
        name=body.name or "Untitled", description=body.description, if_exists=body.if_exists,
    )


@router.post("/assistants/search")
async def search_assistants(request: Request, body: AssistantSearch, response: Response):
    _check_graph(request, body.graph_id)
    rows = await runtime(request).assistants.search(**{**body.model_dump(), "limit": body.limit + 1})
    return page(response, rows, body.offset, body.limit)


@router.post("/assistants/count")
async def count_assistants(request: Request, body: AssistantFilter):
    _check_graph(request, body.graph_id)
    return await runtime(request).assistants.count(**body.model_dump())


async def _fetch(request: Request, assistant_id: UUID) -> dict:
    """Reading endpoints answer a bare 'Not Found' for an unknown id, as the official server does."""
    try:
        return await runtime(request).assistants.get(assistant_id)
    except NotFound:
        raise NotFound("Not Found") from None


@router.get("/assistants/{assistant_id}")
async def get_assistant(request: Request, assistant_id: UUID):
    return await _fetch(request, assistant_id)


@router.patch("/assistants/{assistant_id}")
async def patch_assistant(request: Request, assistant_id: UUID, body: AssistantPatch):
    _check_graph(request, body.graph_id)
    config, context = _mirror(body.config, body.context)
    changes = {**body.model_dump(), "config": config, "context": context}
    return await runtime(request).assistants.update(assistant_id, changes)


@router.delete("/assistants/{assistant_id}", status_code=204)
async def delete_assistant(request: Request, assistant_id: UUID, delete_threads: bool = False):
    rt = runtime(request)
    thread_ids = await rt.assistants.delete(assistant_id, with_threads=delete_threads)
    for thread_id in thread_ids:
        try:
            await run_service.delete_thread(rt, thread_id)  # its runs cancelled, its checkpoints gone
        except NotFound:  # deleted meanwhile
            pass
    return no_content()


@router.post("/assistants/{assistant_id}/versions")
async def list_versions(request: Request, assistant_id: UUID, body: VersionSearch):
    return await runtime(request).assistants.versions(assistant_id, **body.model_dump())


@router.post("/assistants/{assistant_id}/latest")
async def set_latest(request: Request, assistant_id: UUID, body: SetLatest):
    return await runtime(request).assistants.set_latest(assistant_id, body.version)


async def _graph(request: Request, assistant_id: UUID):
    assistant = await _fetch(request, assistant_id)
    return assistant, await runtime(request).graphs.get(assistant["graph_id"], assistant["config"])


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
    try:
        uuid = UUID(assistant_id)
    except ValueError:
        if assistant_id not in runtime(request).graphs:
            raise Invalid("Invalid assistant ID: must be a UUID") from None
        uuid = default_assistant_id(assistant_id)
    _, graph = await _graph(request, uuid)
    drawing = (await graph.aget_graph(xray=level)).to_json()
    for node in drawing["nodes"]:  # the official drawing names runnables without their class path
        if node.get("type") == "runnable":
            node["data"].pop("id", None)
    return drawing


@router.get("/assistants/{assistant_id}/schemas")
async def get_schemas(request: Request, assistant_id: UUID):
    assistant, graph = await _graph(request, assistant_id)
    return {"graph_id": assistant["graph_id"], **graph_schemas(graph, assistant["graph_id"])}


def _flag(value: str) -> bool:
    return value.lower() in ("true", "1", "yes")


@router.get("/assistants/{assistant_id}/subgraphs")
@router.get("/assistants/{assistant_id}/subgraphs/{namespace}")
async def get_subgraphs(request: Request, assistant_id: UUID, namespace: str | None = None, recurse: str = "false"):
    _, graph = await _graph(request, assistant_id)
    subgraphs = graph.aget_subgraphs(namespace=namespace, recurse=_flag(recurse))
    return {ns: graph_schemas(sub) async for ns, sub in subgraphs}
