"""Where checkpoints and the long-term store live: the built-in PostgreSQL saver and store (our database),
MongoDB (checkpointer.backend "mongo"), or a deployment's own (checkpointer.path, store.path: an async context
manager the server enters at start and exits at shutdown, in every process). Assistants, threads, runs and
crons stay in PostgreSQL whatever is chosen here.

Errors of a saver that is not ours are not ours either: a run failing on one fails (as on any error of the
graph's), it is not requeued as on a failure of our database (storage/checkpointer.py). A saver whose
database has passing faults retries them itself (pymongo retries a read and a write once on a replica set)."""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

from .config import Settings
from .errors import ConfigError
from .graphs import _import
from .storage.checkpointer import PooledPostgresSaver, PooledPostgresStore
from .storage.savers import checkpoint_ops, missing_methods
from .storage.serializer import CheckpointSerializer

log = logging.getLogger(__name__)


def make_serde(config: dict | None):
    """checkpointer.serde as a JsonPlusSerializer (ours, which reads messages faster; None without it: the built-in
    savers then take ours with langgraph's defaults). pickle_fallback defaults to true, as in the official schema;
    an absent allowed_msgpack_modules keeps langgraph's default."""
    if not config:
        return None

    def modules(value):
        return [tuple(m) for m in value] if isinstance(value, list) else (value or None)

    kwargs: dict[str, Any] = {
        "pickle_fallback": config.get("pickle_fallback", True),
        "allowed_json_modules": modules(config.get("allowed_json_modules")),
    }
    if "allowed_msgpack_modules" in config:
        kwargs["allowed_msgpack_modules"] = modules(config["allowed_msgpack_modules"])
    return CheckpointSerializer(**kwargs)


async def _enter(stack: contextlib.AsyncExitStack, spec: str, settings: Settings, where: str, yields: type, **offered):
    """Import `spec`, call it (with those of `offered` its signature takes), enter the async context manager it
    returns on `stack`, and check what it yields."""
    factory = _import(spec, settings.base_dir, f"_{where.replace('.', '_')}", owner=where)
    if not callable(factory):
        raise ConfigError(f"{where}: {spec} is a {type(factory).__name__}, not a function returning an async context manager")
    params = inspect.signature(factory).parameters
    manager = factory(**{k: v for k, v in offered.items() if k in params})
    if not (hasattr(manager, "__aenter__") and hasattr(manager, "__aexit__")):
        raise ConfigError(
            f"{where}: {spec}() returned a {type(manager).__name__}, not an async context manager; decorate it with "
            f"@contextlib.asynccontextmanager and yield the {yields.__name__}"
        )
    value = await stack.enter_async_context(manager)
    if not isinstance(value, yields):
        raise ConfigError(f"{where}: {spec} yielded a {type(value).__name__}, not a {yields.__module__}.{yields.__name__}")
    return value


@contextlib.asynccontextmanager
async def mongo_saver(uri: str, serde=None):
    """langgraph-checkpoint-mongodb's saver on the database named in `uri`'s path, of a replica set (or mongos)."""
    try:
        from langgraph.checkpoint.mongodb import MongoDBSaver
        from pymongo import MongoClient
        from pymongo.errors import ConfigurationError, PyMongoError
    except ImportError:
        raise ConfigError(
            "checkpointer backend 'mongo' needs langgraph-checkpoint-mongodb: pip install 'agent-server[mongo]'"
        ) from None
    client = MongoClient(uri, serverSelectionTimeoutMS=10_000)
    try:
        try:
            database = client.get_default_database()
        except ConfigurationError:
            raise ConfigError("checkpointer backend 'mongo': the MongoDB URI must name the database in its path "
                              "(mongodb://host:27017/langgraph?replicaSet=rs0)") from None
        try:
            hello = await asyncio.to_thread(client.admin.command, "hello")
        except PyMongoError as exc:
            raise ConfigError(f"checkpointer backend 'mongo': MongoDB does not answer: {exc}") from None
        if "setName" not in hello and hello.get("msg") != "isdbgrid":
            raise ConfigError("checkpointer backend 'mongo' needs a MongoDB replica set (or a mongos router); "
                              "this server is a standalone mongod: start it with --replSet and rs.initiate()")
        yield await asyncio.to_thread(MongoDBSaver, client, database.name, serde=serde)  # creates its indexes
    finally:
        client.close()


async def open_checkpointer(settings: Settings, pool, stack: contextlib.AsyncExitStack):
    """The saver every run, state read and update uses, and its checkpoint_ops (storage/savers.py)."""
    config = settings.checkpointer
    backend = config.get("backend", "default")
    serde = make_serde(config.get("serde"))
    if backend == "default":
        saver = PooledPostgresSaver(pool, serde=serde)
        return saver, checkpoint_ops(saver, ours=True)
    if backend == "mongo":
        saver = await stack.enter_async_context(mongo_saver(config["uri"], serde or CheckpointSerializer()))
    else:
        saver = await _enter(stack, config["path"], settings, "checkpointer.path", BaseCheckpointSaver)
    if missing := missing_methods(saver):
        raise ConfigError(
            f"the checkpointer {type(saver).__name__} does not implement {', '.join(missing)}, which this server "
            "needs (runs, states, thread deletes); it cannot start with it"
        )
    ops = checkpoint_ops(saver, ours=False)
    off = {name: how for name, how in ops.capabilities.items() if how in (False, "reinsert", "estimate")}
    log.info("checkpointer: %s (%s); without its own methods: %s", type(saver).__name__, backend, _describe(off))
    return saver, ops


_HOW = {
    False: "off", "reinsert": "fallback: re-inserting checkpoints through the saver",
    "estimate": "sizes as the saver's serializer gives them",
}


def _describe(capabilities: dict) -> str:
    return "; ".join(f"{name} {_HOW[how]}" for name, how in capabilities.items()) or "none"


async def open_store(settings: Settings, pool, stack: contextlib.AsyncExitStack, index: dict | None) -> BaseStore:
    """The store graphs and the store API share: ours on PostgreSQL, or store.path's. A custom store is given
    store.index and store.ttl when its function takes `index` / `ttl` arguments; otherwise store.ttl becomes its
    ttl_config if it supports TTLs and has none."""
    if not settings.store.get("path"):
        return PooledPostgresStore(pool, index=index, ttl=settings.store_ttl)
    ttl = {k: v for k, v in settings.store_ttl.items() if v is not None}
    store = await _enter(stack, settings.store["path"], settings, "store.path", BaseStore, index=index, ttl=ttl or None)
    if ttl and store.supports_ttl and store.ttl_config is None:
        store.ttl_config = ttl
    if ttl and not store.supports_ttl:
        log.warning("store.ttl: the store %s does not support TTLs; ignored", type(store).__name__)
    return store
