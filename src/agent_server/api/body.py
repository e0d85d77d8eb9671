"""Pure ASGI middleware at the door: JSON bodies with numbers JSON cannot carry, and the last resort
for exceptions nothing else handled.

`FiniteJSONBody`: `NaN`, `Infinity`, `-Infinity` and numbers past the float range (`1e400`) are not
JSON, but Python's json.loads (which FastAPI uses) takes them, and they would be stored as null or
fail later. A JSON request body holding one anywhere is answered 422 when the application reads it.

`LastResort`: an unexpected exception is logged once with its traceback and answered 500
`{"detail": "Internal Server Error"}`, keeping the connection usable (Starlette's
ServerErrorMiddleware answers too but re-raises, and uvicorn then drops the keep-alive connection)."""
from __future__ import annotations

import json
import logging
import math
import re
from email.message import Message

import orjson
from starlette.exceptions import HTTPException

from .common import encoding_failure, send_json

log = logging.getLogger(__name__)

# Only a body with one of these can hold a non-finite number: the rest skip the second parse.
_SUSPECT = re.compile(rb"NaN|Infinity|[0-9][eE]|[0-9]{300}")


class _NonFinite(ValueError):
    pass


def _constant(name: str):
    raise _NonFinite(name)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(text if len(text) <= 40 else text[:40] + "...")
    return value


def non_finite(body: bytes) -> str | None:
    """The first number in a JSON `body` that JSON cannot carry, if any (None also when not JSON)."""
    if not _SUSPECT.search(body):
        return None
    try:
        json.loads(body, parse_constant=_constant, parse_float=_float)
    except _NonFinite as exc:
        return str(exc)
    except ValueError:  # not JSON (or not UTF-8): FastAPI says so
        return None
    return None


def _is_json(scope) -> bool:
    """Whether FastAPI parses this request's body as JSON (no content type, application/json, +json)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            message = Message()
            message["content-type"] = value.decode("latin-1")
            subtype = message.get_content_subtype()
            return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))
    return True


class FiniteJSONBody:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def checked_receive():
            message = await receive()
            if message["type"] == "http.request" and chunks is not None:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    bad = non_finite(b"".join(chunks))
                    chunks.clear()
                    if bad is not None:
                        # FastAPI re-raises an HTTPException met while reading the body: answered 422
                        raise HTTPException(
                            422, f"Invalid JSON in request body: {bad} is not a valid JSON number "
                            "(NaN, Infinity and numbers out of range are not allowed)",
                        )
            return message

        await self.app(scope, checked_receive, send)


_INTERNAL = orjson.dumps({"detail": "Internal Server Error"})


class LastResort:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as exc:
            if started:  # too late to answer: the server closes the connection
                raise
            if encoding_failure(exc):  # a value in the request JSON cannot carry, met on its way to storage
                status, body = 422, orjson.dumps({"detail": f"Invalid value: {exc}"})
            else:
                log.exception("%s %s: unexpected error", scope.get("method"), scope.get("path"))
                status, body = 500, _INTERNAL
            await send_json(send, status, body)
