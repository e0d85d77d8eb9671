"""Helpers every resource module shares: JSON responses, the runtime, id resolution."""
from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any
from uuid import UUID

from fastapi import Request
from fastapi.responses import Response
from pydantic import AfterValidator

from ..errors import Invalid
from ..graphs import default_assistant_id
from ..runtime import Runtime
from ..services import SYSTEM, Context
from ..serde import dumps


class Unencodable(ValueError):
    """A value JSON cannot carry (a lone surrogate, an integer past 64 bits): bad input, answered 422."""


def encoding_failure(exc: BaseException) -> bool:
    """Whether `exc` is orjson refusing a value in serde.dumps (orjson raises a bare TypeError; only
    where it was raised tells it from a bug of ours)."""
    if not isinstance(exc, TypeError) or exc.__traceback__ is None:
        return False
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code is dumps.__code__


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return dumps(content)
        except TypeError as exc:
            if encoding_failure(exc):
                raise Unencodable(str(exc)) from exc
            raise


async def send_json(send, status: int, body: bytes, *, close: bool = False, headers: dict | None = None) -> None:
    """Answer at the ASGI level, from a middleware: a JSON `body`, with `headers`; `close` also ends the connection."""
    extra = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in (headers or {}).items()]
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def caller(request: Request) -> Context:
    """Who is calling (custom auth will set it on the request; until then everyone sees everything), with
    the request headers `http.configurable_headers` lets reach their runs."""
    ctx = getattr(request.state, "context", SYSTEM)
    headers_filter = getattr(request.app.state, "configurable_headers", None)
    headers = headers_filter.select(request.headers.items()) if headers_filter else ()
    return replace(ctx, headers=headers) if headers else ctx


def resolve_assistant_id(rt: Runtime, value: str | UUID) -> UUID:
    """An assistant id, or a graph id standing for that graph's default assistant."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(value)
    except ValueError:
        if value in rt.graphs:
            return default_assistant_id(value)
        raise Invalid(
            f"Invalid assistant: '{value}'. Must be either:\n- A valid assistant UUID, or\n"
            f"- One of the registered graphs: {', '.join(rt.graphs.ids())}"
        ) from None


def page(response: Response, rows: list, offset: int, limit: int) -> list:
    """The first `limit` of `rows` (fetched with limit + 1), with the official pagination headers: the
    total counts one past this page when more follow."""
    response.headers["X-Pagination-Total"] = str(offset + len(rows))
    if len(rows) > limit:
        response.headers["X-Pagination-Next"] = str(offset + limit)
    return rows[:limit]


def no_content() -> Response:
    return Response(status_code=204)


def _check_config(config: dict) -> dict:
    for key, kind in (("configurable", dict), ("metadata", dict), ("tags", list)):
        if config.get(key) is not None and not isinstance(config[key], kind):
            raise ValueError(f"config.{key} must be {'an object' if kind is dict else 'a list'}")
    if not all(isinstance(tag, str) for tag in config.get("tags") or []):
        raise ValueError("config.tags must be a list of strings")
    if config.get("run_name") is not None and not isinstance(config["run_name"], str):
        raise ValueError("config.run_name must be a string")
    limit = config.get("recursion_limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0):
        raise ValueError(f"config.recursion_limit must be a positive integer, not {limit!r}")
    return config


# A RunnableConfig as a request gives it: an object whose known parts have the right shapes.
RunConfig = Annotated[dict, AfterValidator(_check_config)]
