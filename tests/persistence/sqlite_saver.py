"""checkpointer.path for the tests: langgraph-checkpoint-sqlite's async saver on the file SQLITE_CHECKPOINTS
(shared by an API process and its workers). `missing_delete` yields a saver without adelete_thread, `not_cm`
and `not_saver` are the mistakes the server refuses to start with."""
import contextlib
import os

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver


@contextlib.asynccontextmanager
async def checkpointer():
    async with aiosqlite.connect(os.environ["SQLITE_CHECKPOINTS"], timeout=30) as conn:
        await conn.execute("PRAGMA journal_mode=WAL")  # an API process and workers write the same file
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        yield saver


class ReadOnlySaver(BaseCheckpointSaver):
    """Has aget_tuple, alist, aput and aput_writes, not adelete_thread."""

    async def aget_tuple(self, config):
        return None

    async def alist(self, config, **kwargs):
        return
        yield

    async def aput(self, config, checkpoint, metadata, new_versions):
        return config

    async def aput_writes(self, config, writes, task_id, task_path=""):
        return None


@contextlib.asynccontextmanager
async def missing_delete():
    yield ReadOnlySaver()


def not_cm():
    return AsyncSqliteSaver


@contextlib.asynccontextmanager
async def not_saver():
    yield {"a": "dict"}
