"""Custom auth, on the official `langgraph_sdk.Auth` contract: users' auth files work unchanged.

`auth.path` in langgraph.json names an `Auth` instance. Its `@auth.authenticate` handler turns a request
into a user (api/auth.py calls it); its `@auth.on...` handlers decide, per resource and action,
whether the user may act, may change the action's payload, and which rows of the resource they see
(a filter on metadata, applied in SQL by the repositories). The services call `Policy.authorize` for
every action, whoever calls them (HTTP, MCP, A2A, crons)."""
from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langgraph_sdk import Auth
from langgraph_sdk.auth.types import AuthContext

from ..errors import AgentServerError, ConfigError
from ..storage.base import ANYONE, Filter

log = logging.getLogger(__name__)


class Forbidden(AgentServerError):
    status_code = 403


class AuthUser(dict):
    """The authenticated user as graphs and handlers see it: a mapping (`user["identity"]`, and what it
    survives as in a run's config) with the attributes of langgraph_sdk's BaseUser (`user.identity`)."""

    @property
    def identity(self) -> str:
        return self["identity"]

    @property
    def permissions(self) -> list[str]:
        return list(self.get("permissions") or [])

    @property
    def display_name(self) -> str:
        return self.get("display_name") or self["identity"]

    @property
    def is_authenticated(self) -> bool:
        return self.get("is_authenticated", True)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def as_user(result: Any) -> AuthUser:
    """What an authenticate handler returned: an identity string, a mapping with `identity`, or an object
    with an `identity` attribute (MinimalUser)."""
    if isinstance(result, str):
        return AuthUser(identity=result, permissions=[], is_authenticated=True)
    if isinstance(result, Mapping):
        user = dict(result)
    elif hasattr(result, "identity"):
        user = {
            key: getattr(result, key) for key in ("identity", "permissions", "display_name", "is_authenticated")
            if hasattr(result, key)
        }
    else:
        raise TypeError(f"the authenticate handler returned {type(result).__name__}; expected a str, a dict or a user")
    if not isinstance(user.get("identity"), str) or not user["identity"]:
        raise TypeError("the authenticate handler returned a user without a non-empty string 'identity'")
    user["permissions"] = list(user.get("permissions") or [])
    user.setdefault("is_authenticated", True)
    return AuthUser(user)


def to_filter(result: Mapping) -> Filter:
    """A handler's filter ({"owner": v}, {"k": {"$eq": v}}, {"k": {"$contains": v or [v, ...]}}) as one
    containment condition on metadata: every key must hold (AND)."""
    contained: dict[str, Any] = {}
    for key, condition in result.items():
        if isinstance(condition, Mapping):
            unknown = set(condition) - {"$eq", "$contains"}
            if unknown or len(condition) != 1:
                raise TypeError(f"auth filter on {key!r}: use exactly one of $eq, $contains (got {sorted(condition)})")
            if "$eq" in condition:
                contained[key] = condition["$eq"]
            else:
                value = condition["$contains"]
                contained[key] = list(value) if isinstance(value, (list, tuple)) else [value]
        else:
            contained[key] = condition
    return Filter(metadata=contained)


class Policy:
    """The deployment's `Auth` instance, and what its handlers decide."""

    def __init__(self, auth: Auth, *, disable_studio_auth: bool = False) -> None:
        self.auth = auth
        self.disable_studio_auth = disable_studio_auth
        authenticate = auth._authenticate_handler
        self._authenticate = authenticate
        self._wants = set(inspect.signature(authenticate).parameters) if authenticate else set()

    async def authenticate(self, available: Mapping[str, Any]) -> AuthUser | None:
        """Call the authenticate handler with the request parts it names (`available` maps each name to a
        zero-argument coroutine function, so that only what is asked for is computed). No handler: None
        (anonymous; the authorization handlers still apply)."""
        if self._authenticate is None:
            return None
        kwargs = {}
        for name in self._wants:
            if name not in available:
                raise TypeError(f"the authenticate handler asks for {name!r}, which the server does not provide")
            kwargs[name] = await available[name]()
        result = self._authenticate(**kwargs)
        if inspect.isawaitable(result):
            result = await result
        return as_user(result)

    def _handler(self, resource: str, action: str):
        """The most specific handler: resource and action, then resource, then action, then global."""
        handlers = self.auth._handlers
        for key in ((resource, action), (resource, "*"), ("*", action)):
            if key in handlers:
                return handlers[key][-1]
        return self.auth._global_handlers[-1] if self.auth._global_handlers else None

    async def authorize(self, user: AuthUser | None, resource: str, action: str, value: dict) -> Filter:
        """Whether `user` may do `action` on `resource`: raises Forbidden, or returns the rows they may
        touch. The handler may change `value` (the action's payload) in place."""
        handler = self._handler(resource, action)
        if handler is None:
            return ANYONE
        ctx = AuthContext(
            permissions=user.permissions if user else [], user=user, resource=resource, action=action
        )
        result = await handler(ctx=ctx, value=value)
        if result is False:
            raise Forbidden("Forbidden")
        if result is None or result is True:
            return ANYONE
        if isinstance(result, Mapping):
            return to_filter(result) if resource != "store" else ANYONE  # the store is scoped by namespace
        raise TypeError(f"auth handler for {resource}.{action} returned {type(result).__name__}")


def load_policy(config: dict, base_dir: Path) -> Policy | None:
    """The `auth` section of langgraph.json: None when it names no `path` (the server is open)."""
    from ..graphs import _import

    path = config.get("path")
    if not path:
        return None
    if not isinstance(path, str) or ":" not in path:
        raise ConfigError(f"auth.path must be 'path/to/file.py:name' or 'module:name', got {path!r}")
    auth = _import(path, base_dir, "auth", "auth.path")
    if not isinstance(auth, Auth):
        raise ConfigError(f"auth.path {path} is a {type(auth).__name__}, not a langgraph_sdk.Auth instance")
    return Policy(auth, disable_studio_auth=bool(config.get("disable_studio_auth")))
