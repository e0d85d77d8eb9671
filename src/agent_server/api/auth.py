"""Authentication of every request to a protected route: the deployment's `@auth.authenticate` handler
turns the request into a user, or answers for it (401, or the status its HTTPException names)."""
from __future__ import annotations

import hmac
import logging
import os
from typing import Callable
from urllib.parse import parse_qsl

from langgraph_sdk.auth.exceptions import HTTPException
from langgraph_sdk.auth.types import StudioUser
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.routing import Match

from ..auth import Policy
from ..serde import dumps
from ..services import Context
from .common import send_json

log = logging.getLogger(__name__)

# Open to anyone whatever the auth: probes, monitoring, the API's own description and the console's files
# (its API calls carry the user's credentials).
OPEN_PATHS = frozenset({"/ok", "/info", "/metrics", "/openapi.json"})
OPEN_PREFIXES = ("/docs", "/console")


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


class AuthMiddleware:
    """Pure ASGI. Requests to our routes need a user, but for the open paths; requests to the deployment's
    own routes (`custom(scope)`) only with `http.enable_custom_route_auth`; CORS preflights never do."""

    def __init__(
        self, app, policy: Policy, custom: Callable[[dict], bool] = lambda scope: False, custom_protected: bool = False
    ):
        self.app = app
        self.policy = policy
        self.custom = custom
        self.custom_protected = custom_protected

    def protected(self, scope) -> bool:
        if self.custom(scope):  # checked first: a custom route may shadow one of ours
            return self.custom_protected
        return not is_open(get_route_path(scope))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] == "OPTIONS" or not self.protected(scope):
            return await self.app(scope, receive, send)
        body: list[bytes] = []  # read only if the handler asks for it, then replayed to the route
        try:
            user = self._studio_user(scope) or await self.policy.authenticate(_parts(scope, receive, body))
        except HTTPException as exc:
            return await send_json(send, exc.status_code, dumps({"detail": exc.detail}), headers=exc.headers)
        scope.setdefault("state", {})["context"] = Context(user=user, policy=self.policy)
        if body:
            receive = _replay(body[0], receive)
        await self.app(scope, receive, send)

    def _studio_user(self, scope) -> StudioUser | None:
        """LangGraph Studio's requests, with the deployment's LangSmith API key (LANGSMITH_API_KEY), are a
        StudioUser unless `auth.disable_studio_auth`; without that key set, Studio goes through custom auth."""
        if self.policy.disable_studio_auth:
            return None
        headers = dict(scope["headers"])
        expected = os.environ.get("LANGSMITH_API_KEY")
        given = headers.get(b"x-api-key")
        if headers.get(b"x-auth-scheme") != b"langsmith" or not expected or not given:
            return None
        if not hmac.compare_digest(given, expected.encode()):
            return None
        return StudioUser("langgraph-studio-user", is_authenticated=True)


def _parts(scope, receive, body: list[bytes]) -> dict:
    """What an authenticate handler may ask for by parameter name, each computed only when asked."""
    headers = dict(scope["headers"])

    async def read_body() -> bytes:
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HTTPException(400, "client disconnected")
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body.append(b"".join(chunks))
        return body[0]

    async def authorization():
        value = headers.get(b"authorization")
        return value.decode("latin-1") if value is not None else None

    async def request():
        return Request(scope, receive)

    async def headers_():
        return headers

    async def method():
        return scope["method"]

    async def path():
        return scope["path"]

    async def query_params():
        return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))

    async def path_params():
        for route in scope["app"].router.routes:
            match, child = route.matches(scope)
            if match == Match.FULL:
                return dict(child.get("path_params") or {})
        return {}

    return {
        "request": request, "headers": headers_, "authorization": authorization, "method": method,
        "path": path, "query_params": query_params, "path_params": path_params, "body": read_body,
    }


def _replay(body: bytes, receive):
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed

