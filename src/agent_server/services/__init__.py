"""The rules of each resource, one module per resource. The HTTP API, MCP, A2A and cron firings call
these functions and get the same behaviour; none of them reaches storage directly.

Every function takes the caller's Context first: who is calling, and what the deployment's auth lets them do."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..storage.base import ANYONE, Filter
from ..storage.database import DatabaseUnavailable, UnstorableValue


class Policy(Protocol):
    """Custom auth (auth.Policy): may `user` do `action` on `resource`? Raises to refuse, may change
    `value` (the action's payload) in place, returns the rows of the resource the user may touch."""

    async def authorize(self, user: Any, resource: str, action: str, value: dict) -> Filter: ...


@dataclass(frozen=True)
class Context:
    """Who is calling (`user`, None when unauthenticated) and the policy that applies to them (None: none)."""

    user: Any = None
    headers: tuple[tuple[str, str], ...] = ()  # request headers `http.configurable_headers` lets reach runs
    policy: Policy | None = None

    async def authorize(self, resource: str, action: str, value: dict) -> Filter:
        """The rows of `resource` this caller may `action` (every row without a policy)."""
        if self.policy is None:
            return ANYONE
        return await self.policy.authorize(self.user, resource, action, value)


SYSTEM = Context()  # the server itself (crons firing, housekeeping) and callers when no auth is configured

__all__ = ["Context", "DatabaseUnavailable", "Filter", "Policy", "SYSTEM", "UnstorableValue"]
