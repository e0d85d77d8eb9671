"""What the server does to checkpoints besides running graphs on them: copy a thread, roll a run back, prune,
delete threads (the TTL sweep), the storage report, collecting orphans. One interface, two kinds:

- `SqlCheckpointOps`: the built-in PostgreSQL saver's tables are in our database, so these are SQL
  (checkpoints.py), on the caller's connection: in the same transaction as the thread rows they go with.
- `SaverCheckpointOps`: any other saver (MongoDB, a custom one): its own API where it has the optional method
  (acopy_thread, aprune, adelete_for_runs), else a fallback through its required methods, else the feature is
  off and says so (the rollback strategy answers 422; orphan collection does not run). The connection
  passed is ignored: the saver's database is not ours, nothing it does is part of our transactions.

What each saver can do is found at start (`capabilities`), logged, and shown in /info."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from uuid import UUID

from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple

from ..errors import Invalid
from . import checkpoints

log = logging.getLogger(__name__)

# Without these a saver cannot run graphs, show states or delete threads: the server refuses to start.
REQUIRED = ("aput", "aput_writes", "aget_tuple", "alist", "adelete_thread")
# Pruning through a saver's required methods puts a thread's latest checkpoints back after deleting the thread:
# what it holds in memory then is all there is, so a failing put is tried again (puts are upserts) before it is
# given up, with ~6 s between the first try and the last.
PUT_BACK_DELAYS = (0.2, 0.4, 0.8, 1.6, 3.2)


def implements(saver: BaseCheckpointSaver, method: str) -> bool:
    """Whether the saver's class has its own `method` (BaseCheckpointSaver's raise NotImplementedError)."""
    own = getattr(type(saver), method, None)
    return callable(own) and own is not getattr(BaseCheckpointSaver, method, None)


def missing_methods(saver: BaseCheckpointSaver) -> list[str]:
    return [m for m in REQUIRED if not implements(saver, m)]


def thread_config(thread_id, checkpoint_ns: str | None = None, checkpoint_id: str | None = None) -> dict:
    configurable = {"thread_id": str(thread_id)}
    if checkpoint_ns is not None:
        configurable["checkpoint_ns"] = checkpoint_ns
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


class SqlCheckpointOps:
    """The built-in saver: SQL on its tables, in our transactions."""

    ours = True

    def __init__(self, saver: BaseCheckpointSaver | None = None) -> None:
        self.saver = saver

    @property
    def capabilities(self) -> dict[str, str | bool]:
        return {"rollback": "sql", "copy": "sql", "prune": "sql", "storage_report": "sql", "orphan_collection": "sql"}

    def require_rollback(self, what: str) -> None:
        pass

    def prefetch(self, thread_id: UUID):
        """A read of the thread's latest checkpoint, to pipeline after the claim of a run on it (for `primed`)."""
        return self.saver.latest(thread_id) if self.saver is not None else None

    def primed(self, run_id: UUID, latest):
        """While the run executes, its start takes `latest` (prefetch's read) instead of a query."""
        return self.saver.primed(run_id, latest) if self.saver is not None else contextlib.nullcontext()

    async def copy_thread(self, conn, old: UUID, new: UUID) -> None:
        await checkpoints.copy_thread(conn, old, new)

    async def delete_run(self, conn, thread_id: UUID, run_id: UUID) -> None:
        await checkpoints.delete_run(conn, thread_id, run_id)

    async def delete_threads(self, conn, thread_ids: list[UUID]) -> None:
        await checkpoints.delete_threads(conn, thread_ids)

    async def usage(self, conn, thread_id: UUID) -> dict:
        return await checkpoints.usage(conn, thread_id)

    async def delete_orphans(self, conn) -> int:
        return await checkpoints.delete_orphans(conn)

    async def prune(self, thread_ids: list[UUID]) -> None:
        """Keep only each thread's latest checkpoint per namespace (the library's own aprune)."""
        await self.saver.aprune([str(t) for t in thread_ids], strategy="keep_latest")


class SaverCheckpointOps:
    """Any saver but ours, through its API."""

    ours = False

    def __init__(self, saver: BaseCheckpointSaver) -> None:
        self.saver = saver
        self.has = {m: implements(saver, m) for m in ("adelete_for_runs", "acopy_thread", "aprune")}

    @property
    def capabilities(self) -> dict[str, str | bool]:
        return {
            "rollback": "saver" if self.has["adelete_for_runs"] else False,
            "copy": "saver" if self.has["acopy_thread"] else "reinsert",
            "prune": "saver" if self.has["aprune"] else "reinsert",
            "storage_report": "estimate",
            "orphan_collection": False,
        }

    def prefetch(self, thread_id: UUID) -> None:
        return None  # the saver reads its own checkpoints

    def primed(self, run_id: UUID, latest):
        return contextlib.nullcontext()

    def require_rollback(self, what: str) -> None:
        """A rollback forgets the checkpoints of a run: a saver without adelete_for_runs cannot (422, at once,
        rather than a rollback that leaves the run's checkpoints behind)."""
        if not self.has["adelete_for_runs"]:
            raise Invalid(
                f"{what}: the checkpointer {type(self.saver).__name__} cannot delete the checkpoints of given runs "
                "(it has no adelete_for_runs), so a rollback is not available on this server; use 'interrupt'"
            )

    async def copy_thread(self, conn, old: UUID, new: UUID) -> None:
        if self.has["acopy_thread"]:
            await self.saver.acopy_thread(str(old), str(new))
            return
        saved = [t async for t in self.saver.alist(thread_config(old))]
        for saved_tuple in reversed(saved):  # oldest first: each checkpoint's parent is there before it
            parent = (saved_tuple.parent_config or {}).get("configurable", {}).get("checkpoint_id")
            metadata = saved_tuple.metadata or {}
            if "thread_id" in metadata:
                metadata = {**metadata, "thread_id": str(new)}
            await self._put(new, saved_tuple, parent, metadata)

    async def delete_run(self, conn, thread_id: UUID, run_id: UUID) -> None:
        if self.has["adelete_for_runs"]:
            await self.saver.adelete_for_runs([str(run_id)])
        else:  # refused when asked (require_rollback): only a cancel from before a restart could land here
            log.warning("run %s: rolled back, but its checkpoints stay: the checkpointer cannot delete them", run_id)

    async def delete_threads(self, conn, thread_ids: list[UUID]) -> None:
        for thread_id in thread_ids:
            await self.saver.adelete_thread(str(thread_id))

    async def delete_orphans(self, conn) -> int:
        return 0  # finding them would mean listing every checkpoint of the saver: off (see capabilities)

    async def prune(self, thread_ids: list[UUID]) -> None:
        if self.has["aprune"]:
            await self.saver.aprune([str(t) for t in thread_ids], strategy="keep_latest")
            return
        for thread_id in thread_ids:
            # The fallback: read the latest checkpoint of each namespace (with its pending writes), delete the
            # thread's checkpoints, put those back. Not atomic: the puts are retried, but a process that dies in
            # between loses the thread's state.
            latest: dict[str, CheckpointTuple] = {}
            async for saved in self.saver.alist(thread_config(thread_id)):
                latest.setdefault(saved.config["configurable"].get("checkpoint_ns", ""), saved)
            await self.saver.adelete_thread(str(thread_id))
            for ns in sorted(latest):  # the root namespace ("") first
                await self._put_back(thread_id, latest[ns])

    async def _put_back(self, thread_id: UUID, saved: CheckpointTuple) -> None:
        for delay in (*PUT_BACK_DELAYS, None):
            try:
                await self._put(thread_id, saved, None, saved.metadata or {})
                return
            except Exception as exc:
                if delay is None:
                    log.error("thread %s: pruned, but its latest checkpoint could not be put back (%r): its state "
                              "is lost", thread_id, exc)
                    raise
                log.warning("thread %s: putting its latest checkpoint back after pruning failed (%r); retrying in "
                            "%.1fs", thread_id, exc, delay)
                await asyncio.sleep(delay)

    async def _put(self, thread_id, saved: CheckpointTuple, parent_id: str | None, metadata: dict) -> None:
        """`saved` again under `thread_id` (after `parent_id`), its pending writes with it."""
        ns = saved.config["configurable"].get("checkpoint_ns", "")
        checkpoint = saved.checkpoint
        config = await self.saver.aput(
            thread_config(thread_id, ns, parent_id), checkpoint, metadata, dict(checkpoint.get("channel_versions") or {})
        )
        by_task: dict[str, list] = defaultdict(list)
        for task_id, channel, value in saved.pending_writes or []:
            by_task[task_id].append((channel, value))
        for task_id, writes in by_task.items():
            await self.saver.aput_writes(config, writes, task_id)

    async def usage(self, conn, thread_id: UUID) -> dict:
        """The storage report of checkpoints.usage, its sizes those of the saver's serializer: what the saver
        is given to store, not what its database takes (which only it knows)."""
        size = lambda value: len(self.saver.serde.dumps_typed(value)[1])  # noqa: E731
        checkpoint_part = {"count": 0, "bytes": 0}
        writes = {"count": 0, "bytes": 0}
        versions: dict[tuple, tuple[str, int]] = {}
        async for saved in self.saver.alist(thread_config(thread_id)):
            checkpoint = saved.checkpoint
            values = checkpoint.get("channel_values") or {}
            checkpoint_part["count"] += 1
            checkpoint_part["bytes"] += size({**checkpoint, "channel_values": {}}) + size(saved.metadata or {})
            ns = saved.config["configurable"].get("checkpoint_ns", "")
            for channel, version in (checkpoint.get("channel_versions") or {}).items():
                key = (ns, channel, str(version))
                if key not in versions or channel in values:
                    versions[key] = (channel, size(values[channel]) if channel in values else 0)
            for _, _, value in saved.pending_writes or []:
                writes["count"] += 1
                writes["bytes"] += size(value)
        by_channel: dict[str, dict] = {}
        for channel, nbytes in versions.values():
            entry = by_channel.setdefault(channel, {"versions": 0, "bytes": 0})
            entry["versions"] += 1
            entry["bytes"] += nbytes
        by_channel = dict(sorted(by_channel.items()))
        channel_values = {
            "count": sum(c["versions"] for c in by_channel.values()),
            "bytes": sum(c["bytes"] for c in by_channel.values()),
            "by_channel": by_channel,
        }
        return {
            "thread_id": thread_id,
            "total_bytes": checkpoint_part["bytes"] + channel_values["bytes"] + writes["bytes"],
            "checkpoints": checkpoint_part,
            "channel_values": channel_values,
            "pending_writes": writes,
        }


def checkpoint_ops(saver: BaseCheckpointSaver, ours: bool) -> SqlCheckpointOps | SaverCheckpointOps:
    return SqlCheckpointOps(saver) if ours else SaverCheckpointOps(saver)
