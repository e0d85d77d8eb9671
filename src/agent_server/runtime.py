"""Everything a process shares: settings, the pool, repositories, checkpointer, store, broker, graphs."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore
from psycopg_pool import AsyncConnectionPool

from .broker import Broker, open_broker
from .config import Settings
from .graphs import GraphRegistry, default_assistant_id, load_embeddings
from .persistence import open_checkpointer, open_store
from .storage import database
from .storage.assistants import AssistantRepo
from .storage.crons import CronRepo
from .storage.events import RunEventRepo
from .storage.queue import QueueRepo
from .storage.runs import RunRepo
from .storage.savers import SaverCheckpointOps, SqlCheckpointOps
from .storage.thread_events import ThreadEventRepo
from .storage.threads import ThreadRepo

log = logging.getLogger(__name__)


def _store_index(settings: Settings) -> dict | None:
    """store.index with its embed function loaded (after the graphs: their folders are importable then)."""
    index = settings.store.get("index")
    if not index:
        return None
    return {**index, "embed": load_embeddings(index["embed"], settings.base_dir)}


@dataclass
class Runtime:
    settings: Settings
    pool: AsyncConnectionPool
    broker: Broker
    graphs: GraphRegistry
    checkpointer: BaseCheckpointSaver  # ours (PooledPostgresSaver), MongoDB's or checkpointer.path's
    store: BaseStore  # ours (PooledPostgresStore) or store.path's
    checkpoints: SqlCheckpointOps | SaverCheckpointOps  # copy, rollback, prune...: SQL or through the saver
    assistants: AssistantRepo
    threads: ThreadRepo
    runs: RunRepo
    queue: QueueRepo
    events: RunEventRepo
    crons: CronRepo
    thread_events: ThreadEventRepo
    exits: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)  # custom savers, stores
    # This process's queue worker while it runs (worker/consumer.py QueueWorker), for runs created here to start
    # there at once (reserve, adopt): None in a process that does not run the queue
    local_queue: object | None = None

    @classmethod
    async def start(cls, settings: Settings, graphs: GraphRegistry | None = None) -> "Runtime":
        graphs = graphs or GraphRegistry.load(settings.graphs, settings.base_dir, settings.dependencies)
        store_index = _store_index(settings)
        pool = await database.connect(settings.database_uri, settings.data_dir, max_size=settings.pool_max_size)
        exits = contextlib.AsyncExitStack()
        try:
            await database.migrate(pool, store_index=store_index)
            broker = await open_broker(settings.redis_uri)
            try:
                checkpointer, checkpoints = await open_checkpointer(settings, pool, exits)
                store = await open_store(settings, pool, exits, store_index)
            except BaseException:
                await exits.aclose()
                await broker.close()
                raise
        except BaseException:
            await pool.close()
            raise
        rt = cls(
            settings=settings,
            pool=pool,
            broker=broker,
            graphs=graphs,
            checkpointer=checkpointer,
            store=store,
            checkpoints=checkpoints,
            assistants=AssistantRepo(pool),
            threads=ThreadRepo(pool, checkpoints),
            runs=RunRepo(pool),
            queue=QueueRepo(pool, checkpoints),
            events=RunEventRepo(pool),
            crons=CronRepo(pool),
            thread_events=ThreadEventRepo(pool),
            exits=exits,
        )
        try:
            await rt.ensure_default_assistants()
        except BaseException:
            await rt.close()  # a worker retries its start: leave no pool or Redis connection behind
            raise
        return rt

    async def ensure_default_assistants(self) -> None:
        """One assistant per graph, with the graph's config of LANGGRAPH_CONFIG (its `configurable` is also the
        assistant's context, as for any assistant). When LANGGRAPH_CONFIG is set, it is the source of truth: a
        start with another value makes new versions. When it is not, edits made through the API are kept."""
        for graph_id in self.graphs.ids():
            config = self.settings.graph_configs.get(graph_id) or {}
            context = config.get("configurable") or {}
            assistant_id = default_assistant_id(graph_id)
            assistant = await self.assistants.create(
                assistant_id, graph_id, config=config, context=context,
                metadata={"created_by": "system"}, name=graph_id, description=None, if_exists="do_nothing",
            )
            if self.settings.graph_configs and (assistant["config"], assistant["context"]) != (config, context):
                await self.assistants.update(assistant_id, {"config": config, "context": context})

    async def close(self) -> None:
        await self.exits.aclose()  # the custom checkpointer's and store's context managers
        await self.broker.close()
        await self.pool.close()
        await asyncio.to_thread(database.stop_embedded)
