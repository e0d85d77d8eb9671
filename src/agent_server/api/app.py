"""The HTTP application: routes, error mapping, and the process lifecycle."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from contextlib import asynccontextmanager

import anyio
import fastapi.routing
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from langgraph_sdk.auth.exceptions import HTTPException as AuthHTTPException

from .. import __version__
from ..auth import load_policy
from ..config import Settings
from ..errors import AgentServerError, Unavailable
from ..observability import RequestObservability, fastapi_options
from ..runtime import Runtime
from ..services import DatabaseUnavailable, UnstorableValue
from . import a2a, assistants, crons, mcp, runs, store, system, thread_stream, threads
from . import console
from .auth import AuthMiddleware
from .body import FiniteJSONBody, LastResort
from .common import JSONResponse, Unencodable
from . import http_config
from .limits import BodyLimitMiddleware
from .validation import INVALID_JSON, describe

log = logging.getLogger(__name__)


async def _validation_error(request: Request, exc: RequestValidationError):
    if isinstance(exc.body, (bytes, bytearray)) and request.headers.get("content-type"):
        # FastAPI did not parse it: a content type that is not JSON
        return JSONResponse(
            {"detail": "Unsupported Media Type: the request body must be JSON (Content-Type: application/json)"},
            status_code=415,
        )
    errors = exc.errors()
    detail = describe(errors[0], exc.body) if errors else INVALID_JSON
    return JSONResponse({"detail": detail}, status_code=422)


async def _unencodable(request: Request, exc: Unencodable | UnicodeEncodeError):
    return JSONResponse({"detail": f"Invalid value: {exc}"}, status_code=422)


async def _data_error(request: Request, exc: UnstorableValue):
    """Values PostgreSQL cannot store (a NUL character, an out-of-range number) are bad input."""
    return JSONResponse({"detail": f"Invalid value: {exc.diag.message_primary or exc}"}, status_code=422)


async def _server_error(request: Request, exc: AgentServerError):
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


async def _database_unavailable(request: Request, exc: DatabaseUnavailable):
    """Our database down, restarting or out of pooled connections (PoolTimeout): the request may
    succeed later, so 503 and Retry-After; one warning line, not a traceback per request."""
    log.warning("%s %s: database unavailable: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    return await _server_error(
        request, Unavailable(f"The database is unavailable or overloaded ({type(exc).__name__}); retry shortly.")
    )


async def _http_error(request: Request, exc: StarletteHTTPException):
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _auth_error(request: Request, exc: AuthHTTPException):
    """An authorization handler's own refusal: its status, detail and headers."""
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def _document_security(app: FastAPI, openapi: dict) -> None:
    """`auth.openapi` (securitySchemes, security) shown in /openapi.json and so in /docs."""
    build = app.openapi

    def schema() -> dict:
        if app.openapi_schema is None:
            document = build()
            document.setdefault("components", {})["securitySchemes"] = openapi.get("securitySchemes") or {}
            if "security" in openapi:
                document["security"] = openapi["security"]
        return app.openapi_schema

    app.openapi = schema


async def _exit_when_failed(app: FastAPI, worker) -> None:
    """The queue of this process died: stop the process (non-zero, see cli) so its supervisor restarts it."""
    await worker.failed.wait()
    app.state.failed = True
    os.kill(os.getpid(), signal.SIGTERM)


def _build_routes(app: FastAPI) -> None:
    """FastAPI builds an included router's routes (handlers, validators) at the first request that reaches it:
    about 10 ms on each router's first request, and objects made in the middle of the first burst, where the few
    that live on keep the allocator's arenas from going back (bench/RESULTS.md). Built here, they are part of the
    start (cli.settle_gc freezes them). Where a FastAPI builds them otherwise, nothing is left to do."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if contexts is not None:
        for _ in contexts(app.routes):
            pass


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    """`runtime` given: the caller owns it (tests). Otherwise the app starts and stops its own."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from ..worker.consumer import QueueWorker

        rt = runtime or await Runtime.start(settings)
        app.state.runtime = rt
        with anyio.CancelScope():  # loads anyio's backend (9 ms of imports) now rather than in the first stream
            pass
        worker = app.state.worker = QueueWorker(rt) if settings.run_queue else None
        watch = None
        if worker:
            await worker.start()
            watch = asyncio.create_task(_exit_when_failed(app, worker))
        log.info("serving graphs %s", ", ".join(rt.graphs.ids()))
        try:
            yield
        finally:
            if worker:
                watch.cancel()
                # uvicorn has stopped taking requests: let the runs finish, then hand the rest back
                await worker.stop(drain_seconds=settings.drain_timeout_secs)
            if runtime is None:
                await rt.close()

    # docs_url=None: FastAPI's /docs loads Swagger UI from a CDN; http_config serves it from local assets
    app = FastAPI(
        title="Agent Server", version=__version__, lifespan=lifespan, default_response_class=JSONResponse,
        docs_url=None, redoc_url=None, **fastapi_options(),
    )
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(AgentServerError, _server_error)
    app.add_exception_handler(UnstorableValue, _data_error)
    app.add_exception_handler(DatabaseUnavailable, _database_unavailable)
    # Text or numbers JSON cannot carry (a lone surrogate, an integer past 64 bits) are bad input too;
    # not every TypeError (orjson.JSONEncodeError is TypeError): a bug of ours is a 500 (body.LastResort).
    app.add_exception_handler(Unencodable, _unencodable)
    app.add_exception_handler(UnicodeEncodeError, _unencodable)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(AuthHTTPException, _auth_error)
    for module in (system, assistants, threads, thread_stream, runs, crons, store, mcp, a2a):
        app.include_router(http_config.served(module.router, settings.http))  # less what disable_* switch off
    http_config.serve_routes(app, settings.http)  # /openapi.json, /docs and /ok as disable_meta says
    app.include_router(console.router)  # /console: the web UI, a client of the routes above
    _build_routes(app)
    custom = http_config.load_custom_app(settings)  # http.app: its routes before ours, its middleware below
    if custom:
        http_config.mount_custom_routes(app, custom, settings.http)
    auth_first = settings.http.get("middleware_order") == "auth_first"
    if auth_first:  # added before auth: inside it, so auth runs first
        http_config.add_custom_middleware(app, custom)
    policy = load_policy(settings.auth, settings.base_dir)
    if policy is not None:
        app.add_middleware(
            AuthMiddleware, policy=policy, custom=http_config.custom_route(custom),
            custom_protected=bool(settings.http.get("enable_custom_route_auth")),
        )
        if isinstance(settings.auth.get("openapi"), dict):
            _document_security(app, settings.auth["openapi"])
    if not auth_first:  # middleware_first (the default): outside auth
        http_config.add_custom_middleware(app, custom)
    app.add_middleware(FiniteJSONBody)
    app.add_middleware(LastResort)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes, body_timeout_secs=settings.body_timeout_secs)
    http_config.add_cors(app, settings)  # outside the rest: every answer, the limits' own too, carries CORS headers
    app.add_middleware(RequestObservability)  # outermost: times and ids every answer, the limits' own too
    app.state.configurable_headers = http_config.HeaderFilter(settings.http.get("configurable_headers"))
    prefix = settings.http.get("mount_prefix")
    return http_config.mounted(app, prefix) if prefix else app
