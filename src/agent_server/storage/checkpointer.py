"""The checkpointer: langgraph-checkpoint-postgres's saver, on our pool."""
from __future__ import annotations

import contextlib

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg_pool import AsyncConnectionPool


class PooledPostgresSaver(AsyncPostgresSaver):
    """AsyncPostgresSaver guards its connection with one lock, which on a pool (a connection per
    call) only makes every run's checkpoint reads and writes wait for each other's."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        super().__init__(pool)
        self.lock = contextlib.nullcontext()
