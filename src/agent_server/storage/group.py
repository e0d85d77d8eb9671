"""Group commit of our PostgreSQL writes (aio.GroupCommit): what many tasks hand in while a write is in flight
goes to PostgreSQL together, in the next statement."""
from __future__ import annotations

from typing import TypeVar

import psycopg

from .. import aio

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(aio.GroupCommit[Item, Result]):
    """To its callers, a write stopped with the server is the database gone away: they handle that already."""

    @staticmethod
    def stopped() -> BaseException:
        return psycopg.OperationalError("the write was stopped with the server: it may or may not have been made")
