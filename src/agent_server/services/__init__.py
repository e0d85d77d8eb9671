"""The rules of each resource, one module per resource. The HTTP API, MCP, A2A and cron firings call
these functions and get the same behaviour; none of them reaches storage directly.

Every function takes the caller's Context first: who is calling, and which rows they may see."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..storage.base import ANYONE, Filter
from ..storage.database import DatabaseUnavailable, UnstorableValue


@dataclass(frozen=True)
class Context:
    """Who is calling. `filter` restricts every resource read or written on their behalf (custom auth
    computes it; without auth it lets everything through)."""

    user: Any = None
    headers: tuple[tuple[str, str], ...] = ()  # request headers `http.configurable_headers` lets reach runs
    filter: Filter = ANYONE


SYSTEM = Context()  # the server itself (crons firing, housekeeping) and unauthenticated callers

__all__ = ["Context", "DatabaseUnavailable", "Filter", "SYSTEM", "UnstorableValue"]
