"""Assistants: a graph plus configuration, versioned; deleting one may delete its threads."""
from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from ..errors import BOTH_CONFIGURABLE_AND_CONTEXT, BadRequest, Conflict, NotFound
from ..graphs import default_assistant_id, graph_schemas
from . import Context
from . import threads


def check_graph(rt, graph_id: str | None) -> None:
    ids = rt.graphs.ids()
    if graph_id is not None and graph_id not in ids:
        raise NotFound(f"Graph '{graph_id}' not found. Expected one of: {sorted(ids)}")


def mirror(config: dict | None, context: dict | None) -> tuple[dict | None, dict | None]:
    """`config.configurable` and `context` are two views of one thing: set one, both follow."""
    configurable = (config or {}).get("configurable")
    if configurable and context:
        raise BadRequest(BOTH_CONFIGURABLE_AND_CONTEXT)
    if configurable:
        return config, configurable
    if context:
        return {**(config or {}), "configurable": context}, context
    return config, context


async def create(
    rt, ctx: Context, assistant_id: UUID | None, graph_id: str, *, config: dict, context: dict, metadata: dict,
    name: str | None, description: str | None, if_exists: str,
) -> dict:
    check_graph(rt, graph_id)
    config, context = mirror(config, context)
    return await rt.assistants.create(
        assistant_id or uuid4(), graph_id, config=config, context=context, metadata=metadata,
        name=name or "Untitled", description=description, if_exists=if_exists,
    )


async def search(rt, ctx: Context, **query) -> list[dict]:
    check_graph(rt, query.get("graph_id"))
    return await rt.assistants.search(**query, filter=ctx.filter)


async def count(rt, ctx: Context, **query) -> int:
    check_graph(rt, query.get("graph_id"))
    return await rt.assistants.count(**query, filter=ctx.filter)


async def get(rt, ctx: Context, assistant_id: UUID) -> dict:
    return await rt.assistants.get(assistant_id, filter=ctx.filter)


async def update(rt, ctx: Context, assistant_id: UUID, changes: dict[str, Any]) -> dict:
    """A new version, made the latest."""
    check_graph(rt, changes.get("graph_id"))
    config, context = mirror(changes.get("config"), changes.get("context"))
    return await rt.assistants.update(assistant_id, {**changes, "config": config, "context": context}, filter=ctx.filter)


async def refuse_default(rt, ctx: Context, assistant_id: UUID) -> None:
    """A graph's default assistant (made by the server) stays: `assistant_id: "<graph id>"` stands for it."""
    try:
        assistant = await rt.assistants.get(assistant_id, filter=ctx.filter)
    except NotFound:
        return  # the delete answers for it
    graph_id = assistant["graph_id"]
    if (assistant.get("metadata") or {}).get("created_by") == "system" and assistant_id == default_assistant_id(graph_id):
        raise Conflict(
            f"Assistant {assistant_id} is the default assistant of graph '{graph_id}' (assistant_id "
            f"'{graph_id}' stands for it) and cannot be deleted; update it instead."
        )


async def delete(rt, ctx: Context, assistant_id: UUID, *, delete_threads: bool = False) -> None:
    await refuse_default(rt, ctx, assistant_id)
    for thread_id in await rt.assistants.delete(assistant_id, with_threads=delete_threads, filter=ctx.filter):
        try:
            await threads.delete(rt, ctx, thread_id)  # its runs cancelled, its checkpoints gone
        except NotFound:  # deleted meanwhile, or not the caller's
            pass


async def versions(rt, ctx: Context, assistant_id: UUID, **query) -> list[dict]:
    return await rt.assistants.versions(assistant_id, **query, filter=ctx.filter)


async def set_latest(rt, ctx: Context, assistant_id: UUID, version: int) -> dict:
    return await rt.assistants.set_latest(assistant_id, version, filter=ctx.filter)


async def graph(rt, ctx: Context, assistant_id: UUID):
    """The assistant and its graph, built with the assistant's config."""
    assistant = await get(rt, ctx, assistant_id)
    return assistant, await rt.graphs.get(assistant["graph_id"], assistant["config"])


async def schemas(rt, ctx: Context, assistant_id: UUID) -> dict:
    assistant, built = await graph(rt, ctx, assistant_id)
    return {"graph_id": assistant["graph_id"], **graph_schemas(built, assistant["graph_id"])}


async def subgraphs(rt, ctx: Context, assistant_id: UUID, namespace: str | None, recurse: bool) -> dict:
    _, built = await graph(rt, ctx, assistant_id)
    return {ns: graph_schemas(sub) async for ns, sub in built.aget_subgraphs(namespace=namespace, recurse=recurse)}
