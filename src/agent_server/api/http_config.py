"""The `http` section of langgraph.json, as the official server reads it: CORS, which of our routes are
served (`disable_*`), the deployment's own Starlette/FastAPI app (`http.app`: its routes, middleware,
lifespan and exception handlers) served with ours, the request headers a run sees
(`configurable_headers`), and a URL prefix for it all (`mount_prefix`). Checked in config.py."""
from __future__ import annotations

import logging
import re
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Iterable, Mapping

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles

from ..config import Settings
from ..errors import ConfigError

log = logging.getLogger(__name__)

# ---- CORS ---------------------------------------------------------------------------------------------

EXPOSED = ["x-pagination-total", "x-pagination-next", "content-location"]


def cors_options(settings: Settings) -> dict:
    """CORSMiddleware's options. By default every origin (CORS_ALLOW_ORIGINS), method and header, the
    pagination headers and Content-Location readable; credentials when the origins are named (a browser
    refuses them with "*"). `http.cors` (or CORS_CONFIG) replaces that, with Starlette's defaults for what
    it leaves out. Either way a preflight asking for private network access (Chrome, from a hosted page to
    127.0.0.1) is answered Access-Control-Allow-Private-Network: true."""
    origins = settings.cors_allow_origins
    config = settings.http.get("cors")
    if config is None:
        return {
            "allow_origins": origins, "allow_credentials": "*" not in origins, "allow_methods": ["*"],
            "allow_headers": ["*"], "expose_headers": EXPOSED, "allow_private_network": True,
        }
    options = {"allow_private_network": True, **config}
    if "allow_origins" not in options and origins != ["*"]:
        options["allow_origins"] = origins
    return options


def add_cors(app: Starlette, settings: Settings) -> None:
    app.add_middleware(CORSMiddleware, **cors_options(settings))


# ---- configurable headers -----------------------------------------------------------------------------

NEVER_CONFIGURABLE = frozenset({"authorization", "x-api-key", "x-service-key", "x-tenant-id"})  # secrets


def _pattern(pattern: str) -> re.Pattern:
    """A header name pattern: literal characters and `*` (any run of characters), nothing else (no ReDoS)."""
    return re.compile(".*".join(map(re.escape, pattern.lower().split("*"))), re.DOTALL)


class HeaderFilter:
    """Which request headers reach a run's `config["configurable"]`: those matching an `include` pattern
    and no `exclude` one (none without `include`, as the official server); never credentials."""

    def __init__(self, config: Mapping | None) -> None:
        config = config or {}
        self.include = [_pattern(p) for p in config.get("includes") or config.get("include") or []]
        self.exclude = [_pattern(p) for p in config.get("excludes") or config.get("exclude") or []]

    def allows(self, name: str) -> bool:
        return (
            name not in NEVER_CONFIGURABLE
            and any(p.fullmatch(name) for p in self.include)
            and not any(p.fullmatch(name) for p in self.exclude)
        )

    def select(self, headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        """The (lower-case name, value) pairs let through."""
        if not self.include:
            return ()
        return tuple((name, value) for name, value in headers if self.allows(name))


# ---- which of our routes are served -------------------------------------------------------------------

# Path prefix → the switch that removes the routes under it. The longest prefix of a route decides, so
# /threads/{thread_id}/runs/... is a run route (disable_runs), not a thread route; crons are runs.
SWITCHES = {
    "/assistants": "disable_assistants",
    "/threads": "disable_threads",
    "/threads/{}/runs": "disable_runs",
    "/runs": "disable_runs",
    "/queue": "disable_runs",  # ours: the runs in flight
    "/store": "disable_store",
    "/mcp": "disable_mcp",
    "/a2a": "disable_a2a",
    "/.well-known/agent-card.json": "disable_a2a",
    "/ui": "disable_ui",
    "/info": "disable_meta",
    "/metrics": "disable_meta",
    "/docs": "disable_meta",
    "/openapi.json": "disable_meta",
}
# A custom route cannot replace these of ours (as the official server); any other of ours it can.
UNSHADOWABLE = ("/ok", "/metrics", "/docs", "/openapi.json")


def _segments(path: str) -> list[str]:
    return [("{}" if s.startswith("{") else s) for s in path.strip("/").split("/")]


def switch_of(path: str) -> str | None:
    """The `disable_*` switch a route path falls under (None: always served)."""
    parts, best = _segments(path), None
    for prefix, switch in SWITCHES.items():
        want = _segments(prefix)
        if parts[: len(want)] == want and (best is None or len(want) > best[0]):
            best = (len(want), switch)
    return best[1] if best else None


def _is_under(path: str, prefixes: Iterable[str]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def _switched_off(http: Mapping):
    off = {switch for switch in set(SWITCHES.values()) if http.get(switch)}
    # disable_meta: /ok stays (probes) but checks nothing: ours is replaced (serve_routes)
    return lambda path: switch_of(path) in off or ("disable_meta" in off and path == "/ok")


def served(router: APIRouter, http: Mapping) -> APIRouter:
    """`router` without the routes the `disable_*` switches turn off (a router's options were applied to
    its routes as they were declared: a new router of the rest serves them the same)."""
    off = _switched_off(http)
    if not any(off(getattr(r, "path", "")) for r in router.routes):
        return router
    return APIRouter(routes=[r for r in router.routes if not off(getattr(r, "path", ""))])


async def _ok(request) -> JSONResponse:
    return JSONResponse({"ok": True})


def serve_routes(app: FastAPI, http: Mapping) -> None:
    """The app's own routes (/openapi.json) as the switches say; /docs from local assets; with
    disable_meta, an /ok that checks nothing."""
    off = _switched_off(http)
    app.router.routes[:] = [r for r in app.router.routes if not off(getattr(r, "path", ""))]
    if http.get("disable_meta"):
        app.router.routes.insert(0, Route("/ok", _ok, methods=["GET"]))
    else:
        _add_docs(app)


# ---- /docs without internet ---------------------------------------------------------------------------

def _assets() -> Path:
    import fastapi_offline  # ships Swagger UI's bundle and stylesheet

    return Path(fastapi_offline.__file__).parent / "static"


def _add_docs(app: FastAPI) -> None:
    """Swagger UI from assets served here (FastAPI's own page loads them from a CDN: blank offline)."""

    async def docs(request):
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/assets/favicon.png",
        )

    app.router.routes[:0] = [
        Route("/docs", docs, methods=["GET"], include_in_schema=False),
        Mount("/docs/assets", StaticFiles(directory=_assets()), name="docs-assets"),
    ]


# ---- the deployment's own app -------------------------------------------------------------------------

def load_custom_app(settings: Settings) -> Starlette | None:
    """`http.app`: './file.py:app' (relative to langgraph.json) or 'module:app'."""
    from ..graphs import _import

    spec = settings.http.get("app")
    if not spec:
        return None
    try:
        app = _import(spec, settings.base_dir, "custom_http_app", "http.app")
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"http.app ({spec}) failed to load: {type(exc).__name__}: {exc}") from exc
    if not isinstance(app, Starlette):
        raise ConfigError(f"http.app ({spec}) is a {type(app).__name__}, not a Starlette or FastAPI application")
    return app


def mount_custom_routes(app: FastAPI, custom: Starlette, http: Mapping) -> None:
    """The deployment's routes go before ours: a custom route of the same path as one of ours wins, but
    for UNSHADOWABLE ones (unless disable_meta removed ours). Its exception handlers serve where ours have
    none; its lifespan runs inside ours (the runtime is up first), and both apps share one `state`."""
    reserved = () if http.get("disable_meta") else UNSHADOWABLE
    theirs = []
    for route in custom.router.routes:
        path = getattr(route, "path", "")
        if _is_under(path, reserved):
            log.info("http.app: %s is Agent Server's own route; the custom one is not served", path)
        else:
            theirs.append(route)
    app.router.routes[:0] = theirs
    for exc, handler in custom.exception_handlers.items():
        app.exception_handlers.setdefault(exc, handler)
    custom.state = app.state
    app.router.lifespan_context = _combined(app.router.lifespan_context, custom)


def _combined(ours, custom: Starlette):
    @asynccontextmanager
    async def lifespan(app):
        async with ours(app) as state, custom.router.lifespan_context(custom) as custom_state:
            yield {**(state or {}), **(custom_state or {})} or None

    return lifespan


def add_custom_middleware(app: Starlette, custom: Starlette | None) -> None:
    """The deployment's middleware, its first the outermost as in its own app."""
    for middleware in reversed(custom.user_middleware if custom else []):
        app.add_middleware(middleware.cls, *middleware.args, **middleware.kwargs)


def custom_route(custom: Starlette | None):
    """A predicate on an ASGI scope: is it a request for one of the deployment's routes? (Custom routes
    are protected by auth only with `http.enable_custom_route_auth`.)"""
    routes: list[BaseRoute] = list(custom.router.routes) if custom else []

    def matches(scope) -> bool:
        return any(route.matches(scope)[0] == Match.FULL for route in routes)

    return matches


# ---- mount prefix -------------------------------------------------------------------------------------

def mounted(app: FastAPI, prefix: str) -> Starlette:
    """Everything under `prefix`; /ok and /metrics also at the root, where probes and scrapers look."""
    outer = Starlette(
        routes=[Route("/ok", app), Route("/metrics", app), Mount(prefix, app=app)],
        lifespan=lambda _: app.router.lifespan_context(app),
    )
    outer.state = app.state  # the process's state (runtime, failed) read through either
    return outer
