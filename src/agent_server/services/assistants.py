"""Assistants: a graph plus configuration, versioned; deleting one may delete its threads."""
from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from ..errors import BOTH_CONFIGURABLE_AND_CONTEXT, BadRequest, Conflict, NotFound
from ..graphs import default_assistant_id, graph_schemas
from . import Context, Filter
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
    asked = {
        "assistant_id": assistant_id or uuid4(), "graph_id": graph_id, "config": config, "context": context,
        "metadata": dict(metadata), "if_exists": if_exists, "name": name or "Untitled",
    }
    await ctx.authorize("assistants", "create", asked)  # the policy may stamp the metadata (an owner)
    config, context = mirror(asked["config"], asked["context"])
    return await rt.assistants.create(
        asked["assistant_id"], graph_id, config=config, context=context, metadata=asked["metadata"],
        name=asked["name"], description=description, if_exists=if_exists,
    )


async def allowed(ctx: Context, action: str, assistant_id: UUID, **value) -> Filter:
    """The assistants the caller may `action` (custom auth)."""
    return await ctx.authorize("assistants", action, {"assistant_id": assistant_id, **value})


async def search(rt, ctx: Context, **query) -> list[dict]:
    check_graph(rt, query.get("graph_id"))
    visible = await ctx.authorize("assistants", "search", query)
    return await rt.assistants.search(**query, filter=visible)


async def count(rt, ctx: Context, **query) -> int:
    check_graph(rt, query.get("graph_id"))
    visible = await ctx.authorize("assistants", "search", query)
    return await rt.assistants.count(**query, filter=visible)


async def get(rt, ctx: Context, assistant_id: UUID) -> dict:
    return await rt.assistants.get(assistant_id, filter=await allowed(ctx, "read", assistant_id))


async def update(rt, ctx: Context, assistant_id: UUID, changes: dict[str, Any]) -> dict:
    """A new version, made the latest."""
    check_graph(rt, changes.get("graph_id"))
    changes = {**changes, "assistant_id": assistant_id}
    visible = await ctx.authorize("assistants", "update", changes)
    changes.pop("assistant_id")
    config, context = mirror(changes.get("config"), changes.get("context"))
    return await rt.assistants.update(assistant_id, {**changes, "config": config, "context": context}, filter=visible)


async def refuse_default(rt, assistant_id: UUID, visible: Filter) -> None:
    """A graph's default assistant (made by the server) stays: `assistant_id: "<graph id>"` stands for it."""
    try:
        assistant = await rt.assistants.get(assistant_id, filter=visible)
    except NotFound:
        return  # the delete answers for it
    graph_id = assistant["graph_id"]
    if (assistant.get("metadata") or {}).get("created_by") == "system" and assistant_id == default_assistant_id(graph_id):
        raise Conflict(
            f"Assistant {assistant_id} is the default assistant of graph '{graph_id}' (assistant_id "
            f"'{graph_id}' stands for it) and cannot be deleted; update it instead."
        )


async def delete(rt, ctx: Context, assistant_id: UUID, *, delete_threads: bool = False) -> None:
    visible = await allowed(ctx, "delete", assistant_id, delete_threads=delete_threads)
    await refuse_default(rt, assistant_id, visible)
    for thread_id in await rt.assistants.delete(assistant_id, with_threads=delete_threads, filter=visible):
        try:
            await threads.delete(rt, ctx, thread_id)  # its runs cancelled, its checkpoints gone
        except NotFound:  # deleted meanwhile, or not the caller's
            pass


async def versions(rt, ctx: Context, assistant_id: UUID, **query) -> list[dict]:
    return await rt.assistants.versions(assistant_id, **query, filter=await allowed(ctx, "read", assistant_id))


async def set_latest(rt, ctx: Context, assistant_id: UUID, version: int) -> dict:
    visible = await allowed(ctx, "update", assistant_id, version=version)
    return await rt.assistants.set_latest(assistant_id, version, filter=visible)


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
