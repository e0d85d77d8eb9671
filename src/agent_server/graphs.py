"""Load the graphs named in langgraph.json: compiled graphs, StateGraphs and factories."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import sys
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from uuid import UUID, uuid5

from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from .errors import ConfigError, NotFound

log = logging.getLogger(__name__)

# Default assistants get a stable id derived from the graph id, as the official server derives it.
ASSISTANT_NAMESPACE = UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


def default_assistant_id(graph_id: str) -> UUID:
    return uuid5(ASSISTANT_NAMESPACE, graph_id)


@dataclass
class GraphEntry:
    graph_id: str
    spec: str
    compiled: Pregel | None = None  # loaded once at start
    factory: Callable[..., Any] | None = None  # called per run with the run's config
    # `compiled` with a checkpointer and store injected, per (checkpointer, store) pair
    injected: dict[tuple[int, int], Pregel] = field(default_factory=dict)

    async def build(self, config: dict) -> Pregel:
        if self.compiled is not None:
            return self.compiled
        assert self.factory is not None
        params = inspect.signature(self.factory).parameters
        result = self.factory(config) if params else self.factory()
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, StateGraph):
            result = result.compile()
        if not isinstance(result, Pregel):
            raise TypeError(f"graph factory {self.spec} returned {type(result).__name__}, not a graph")
        return result


def _import(spec: str, base_dir: Path, graph_id: str, owner: str | None = None):
    """`./file.py:attr` (relative to base_dir; loaded as module `graph_id`) or `module:attr`; errors name `owner`."""
    owner = owner or f"graph '{graph_id}'"
    target, _, attr = spec.rpartition(":")
    if target.endswith(".py") or "/" in target:
        path = (base_dir / target).resolve()
        if not path.is_file():
            raise ConfigError(f"{owner}: file {path} not found")
        name = f"agent_server_graphs.{graph_id}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"{owner}: {target} has no attribute '{attr}'") from None


def load_embeddings(spec: str, base_dir: Path):
    """store.index.embed: a function (texts → vectors, sync or async) named `./file.py:func` or `module:func`,
    or a LangChain `provider:model` (langchain's init_embeddings). Call after GraphRegistry.load, which puts
    the config's folder and local dependencies on sys.path."""
    owner = "store.index.embed"
    target, _, attr = spec.rpartition(":")
    is_code = target.endswith(".py") or "/" in target or (
        attr.isidentifier() and importlib.util.find_spec(target.split(".")[0]) is not None
    )
    if not is_code:  # a model name like "openai:text-embedding-3-small" is no Python attribute
        try:
            from langchain.embeddings import init_embeddings
        except ImportError:
            raise ConfigError(
                f"{owner} {spec!r} names a provider:model, which needs LangChain: pip install langchain "
                "and the provider's package (e.g. langchain-openai); or give './file.py:func' of your own"
            ) from None
        try:
            return init_embeddings(spec)
        except Exception as exc:
            raise ConfigError(f"{owner} {spec!r}: {type(exc).__name__}: {exc}") from exc
    try:
        embed = _import(spec, base_dir, "store_index_embed", owner)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{owner} ({spec}) failed to load: {type(exc).__name__}: {exc}") from exc
    if not callable(embed):
        raise ConfigError(f"{owner} ({spec}) is a {type(embed).__name__}, not a function or Embeddings")
    return embed


class GraphRegistry:
    def __init__(self, entries: dict[str, GraphEntry]) -> None:
        self.entries = entries

    @classmethod
    def load(cls, graphs: dict[str, str], base_dir: Path, dependencies: list[Path] = ()) -> "GraphRegistry":
        for dep in [base_dir, *dependencies, *(d / "src" for d in dependencies if (d / "src").is_dir())]:
            if str(dep) not in sys.path:  # local dependencies import as if installed (src layout too)
                sys.path.insert(0, str(dep))
        entries = {}
        for graph_id, spec in graphs.items():
            try:
                obj = _import(spec, base_dir, graph_id)
            except ConfigError:
                raise
            except Exception as exc:
                raise ConfigError(f"graph '{graph_id}' ({spec}) failed to load: {type(exc).__name__}: {exc}") from exc
            entry = GraphEntry(graph_id, spec)
            if isinstance(obj, Pregel):
                entry.compiled = obj
            elif isinstance(obj, StateGraph):
                entry.compiled = obj.compile()
            elif callable(obj):
                entry.factory = obj
            else:
                raise ConfigError(f"graph '{graph_id}' ({spec}) is a {type(obj).__name__}, not a graph or factory")
            entries[graph_id] = entry
            log.info("loaded graph %s from %s", graph_id, spec)
        return cls(entries)

    def __contains__(self, graph_id: object) -> bool:
        return isinstance(graph_id, str) and graph_id in self.entries

    def ids(self) -> list[str]:
        return list(self.entries)

    async def get(self, graph_id: str, config: dict | None = None, *, checkpointer=None, store=None) -> Pregel:
        """The graph to run, with the server's checkpointer and store injected."""
        entry = self.entries.get(graph_id)
        if entry is None:
            raise NotFound(f"Graph '{graph_id}' not found")
        if checkpointer is None and store is None:
            return await entry.build(config or {})
        if entry.compiled is not None:  # inject once: a per-run copy of a static graph is waste
            key = (id(checkpointer), id(store))
            if key not in entry.injected:
                entry.injected[key] = entry.compiled.copy(update={"checkpointer": checkpointer, "store": store})
            return entry.injected[key]
        graph = await entry.build(config or {})
        return graph.copy(update={"checkpointer": checkpointer, "store": store})


def _state_jsonschema(graph: Pregel, name: str | None) -> dict:
    """Every state key, each optional: the shape a client may send or read back."""
    from langgraph.channels.base import BaseChannel
    from pydantic import create_model

    keys = getattr(getattr(graph, "builder", None), "channels", None) or [
        k for k in graph.channels if not k.startswith(("__", "branch:"))
    ]
    fields = {k: (c.UpdateType, None) for k in keys if isinstance(c := graph.channels.get(k), BaseChannel)}
    return create_model(graph.get_name("State", name=name), **fields).model_json_schema()


def _config_jsonschema(graph: Pregel) -> dict:
    schema = graph.get_config_jsonschema()
    return schema if schema.get("properties") else {}


def _safe(fn):
    try:
        return fn()
    except Exception as exc:  # a schema that cannot be rendered must not break the endpoint
        log.warning("schema unavailable: %s", exc)
        return None


# Schemas per graph object, computed once: rendering them takes tens of milliseconds of CPU.
_schemas: weakref.WeakKeyDictionary[Pregel, dict[str | None, dict[str, Any]]] = weakref.WeakKeyDictionary()


def graph_schemas(graph: Pregel, name: str | None = None) -> dict[str, Any]:
    """The five JSON schemas of a graph; `name` (the graph id) titles the state schema."""
    by_name = _schemas.setdefault(graph, {})
    if name not in by_name:
        by_name[name] = _render_schemas(graph, name)
    return by_name[name]


def _render_schemas(graph: Pregel, name: str | None) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # get_config_jsonschema is deprecated, and still what clients read
        context = _safe(graph.get_context_jsonschema)
        return {
            "input_schema": _safe(graph.get_input_jsonschema),
            "output_schema": _safe(graph.get_output_jsonschema),
            "state_schema": _safe(lambda: _state_jsonschema(graph, name)),
            # A graph with a context schema is configured by its context: the config schema describes the same
            # fields (older clients read this one), not a `configurable` wrapper around them.
            "config_schema": context if context is not None else _safe(lambda: _config_jsonschema(graph)),
            "context_schema": context,
        }
