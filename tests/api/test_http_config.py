"""The `http` section of langgraph.json served: CORS (the default and as configured), the deployment's own
app (routes that shadow ours, middleware, lifespan), configurable headers reaching a run, `disable_*`
switches, `mount_prefix`; the docs served from local assets and the SSE routes described as such."""
from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from conftest import TESTS, ServerProcess

SEEN_CONFIG = f"{TESTS / 'graphs' / 'seen_config.py'}:graph"

CUSTOM_APP = '''
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.middleware.base import BaseHTTPMiddleware


@asynccontextmanager
async def lifespan(app):
    app.state.greeting = "set by the custom lifespan"
    yield


app = FastAPI(lifespan=lifespan)


class Stamp(BaseHTTPMiddleware):
    """Changes every response, ours too."""

    async def dispatch(self, request, call_next):
        response = await call_next(request)
        response.headers["x-stamped"] = request.url.path
        return response


app.add_middleware(Stamp)


@app.get("/custom/hello")
async def hello(request: Request):
    return {"greeting": request.app.state.greeting}


@app.post("/assistants/search")  # shadows ours
async def shadowing():
    return [{"shadowed": True}]


@app.get("/ok")  # cannot shadow ours
async def not_ok():
    return {"ok": "custom"}
'''


def start(folder: Path, database_uri: str, env: dict | None = None, **http) -> ServerProcess:
    (folder / "langgraph.json").write_text(json.dumps({"graphs": {"seen_config": SEEN_CONFIG}, "http": http}))
    server = ServerProcess(folder / "langgraph.json", env={"DATABASE_URI": database_uri, **(env or {})})
    try:
        return server.wait_ready()
    except BaseException:
        server.stop()
        raise


@pytest.fixture(scope="module")
def custom(tmp_path_factory, database_uri):
    folder = tmp_path_factory.mktemp("custom_http")
    (folder / "webapp.py").write_text(CUSTOM_APP)
    server = start(
        folder, database_uri,
        app="./webapp.py:app",
        cors={
            "allow_origins": ["http://allowed.test"], "allow_methods": ["GET", "POST"],
            "allow_headers": ["content-type"], "expose_headers": ["x-stamped"], "max_age": 42,
        },
        configurable_headers={"include": ["x-user-id", "x-tenant-*", "authorization"], "exclude": ["x-tenant-secret"]},
        disable_store=True,
    )
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
    server.stop()


def preflight(client: httpx.Client, path: str, origin: str, method: str = "POST", **extra) -> httpx.Response:
    headers = {"origin": origin, "access-control-request-method": method, **extra}
    return client.options(path, headers=headers)


# ---- CORS ---------------------------------------------------------------------------------------------

def test_default_cors_answers_a_preflight_from_any_origin(http):
    r = preflight(
        http, "/threads/search", "http://localhost:5173",
        **{"access-control-request-headers": "content-type,x-api-key", "access-control-request-private-network": "true"},
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-allow-headers"] == "content-type,x-api-key"
    assert "POST" in r.headers["access-control-allow-methods"] and "DELETE" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-private-network"] == "true"


def test_default_cors_exposes_pagination_headers(http):
    r = http.post("/threads/search", json={"limit": 1}, headers={"origin": "http://localhost:5173"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    exposed = {h.strip() for h in r.headers["access-control-expose-headers"].split(",")}
    assert exposed == {"x-pagination-total", "x-pagination-next", "content-location"}
    assert "x-pagination-total" in r.headers
    # errors carry CORS headers too, or a browser could not read them
    bad = http.post("/threads/search", content=b"{", headers={"origin": "http://x.test", "content-type": "application/json"})
    assert bad.status_code == 422 and bad.headers["access-control-allow-origin"] == "*"


def test_configured_cors_allows_only_what_it_names(custom):
    r = preflight(custom, "/threads/search", "http://allowed.test", **{"access-control-request-headers": "content-type"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://allowed.test"
    assert r.headers["access-control-max-age"] == "42"
    assert r.headers["access-control-allow-methods"] == "GET, POST"
    assert preflight(custom, "/threads/search", "http://elsewhere.test").status_code == 400
    assert preflight(custom, "/threads/search", "http://allowed.test", method="DELETE").status_code == 400
    refused = preflight(custom, "/threads/search", "http://allowed.test", **{"access-control-request-headers": "x-other"})
    assert refused.status_code == 400
    simple = custom.post("/threads/search", json={}, headers={"origin": "http://allowed.test"})
    assert simple.headers["access-control-allow-origin"] == "http://allowed.test"
    assert simple.headers["access-control-expose-headers"] == "x-stamped"
    other = custom.post("/threads/search", json={}, headers={"origin": "http://elsewhere.test"})
    assert "access-control-allow-origin" not in other.headers


# ---- the deployment's own app -------------------------------------------------------------------------

def test_custom_route_is_served_with_its_lifespan_state(custom):
    assert custom.get("/custom/hello").json() == {"greeting": "set by the custom lifespan"}


def test_custom_route_shadows_ours_but_not_the_health_check(custom):
    assert custom.post("/assistants/search", json={}).json() == [{"shadowed": True}]
    assert custom.get("/ok").json() == {"ok": True, "services": {}}


def test_custom_middleware_changes_our_responses_too(custom):
    assert custom.post("/threads/search", json={}).headers["x-stamped"] == "/threads/search"
    assert custom.get("/custom/hello").headers["x-stamped"] == "/custom/hello"


def test_configurable_headers_reach_the_run(custom):
    headers = {
        "x-user-id": "u1", "x-tenant-a": "ta", "x-tenant-secret": "no", "x-other": "no",
        "authorization": "Bearer never", "user-agent": "test-agent",
    }
    run = custom.post("/runs/wait", json={"assistant_id": "seen_config", "input": {}}, headers=headers)
    seen = run.json()["seen"]
    assert seen["x-user-id"] == "u1" and seen["x-tenant-a"] == "ta"
    for absent in ("x-tenant-secret", "x-other", "authorization", "user-agent"):
        assert absent not in seen


def test_no_header_reaches_a_run_by_default(http):
    run = http.post("/runs/wait", json={"assistant_id": "seen_config", "input": {}}, headers={"x-user-id": "u1"})
    assert "x-user-id" not in run.json()["seen"]


def test_disable_store_removes_its_routes(custom):
    assert custom.post("/store/items/search", json={}).status_code == 404
    assert not [p for p in custom.get("/openapi.json").json()["paths"] if p.startswith("/store")]
    assert custom.post("/threads/search", json={}).status_code == 200


def test_mount_prefix_disable_switches_and_allowed_origins(tmp_path, database_uri):
    """Everything under /api but /ok and /metrics also at the root; runs and meta routes switched off;
    CORS_ALLOW_ORIGINS names the origins, which then get credentials."""
    server = start(
        tmp_path, database_uri, env={"CORS_ALLOW_ORIGINS": "http://a.test,http://b.test"},
        mount_prefix="/api", disable_runs=True, disable_meta=True,
    )
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            assert c.get("/ok").json() == {"ok": True} and c.get("/api/ok").json() == {"ok": True}
            thread = c.post("/api/threads", json={}).json()
            assert c.get(f"/api/threads/{thread['thread_id']}").status_code == 200
            assert c.post("/threads", json={}).status_code == 404
            for path in ("/api/runs/wait", f"/api/threads/{thread['thread_id']}/runs/wait"):
                assert c.post(path, json={"assistant_id": "seen_config"}).status_code == 404
            for path in ("/api/docs", "/api/openapi.json", "/api/info"):
                assert c.get(path).status_code == 404
            r = preflight(c, "/api/threads", "http://b.test")
            assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://b.test"
            assert r.headers["access-control-allow-credentials"] == "true"
            assert preflight(c, "/api/threads", "http://c.test").status_code == 400
    finally:
        server.stop()


# ---- the API's description ----------------------------------------------------------------------------

def test_docs_are_served_from_local_assets(http):
    page = http.get("/docs").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(a.startswith("/docs/assets/") for a in assets), assets
    for asset in assets:
        r = http.get(asset)
        assert r.status_code == 200 and len(r.content) > 1000
    assert "SwaggerUIBundle" in http.get("/docs/assets/swagger-ui-bundle.js").text


def test_sse_routes_are_described_as_event_streams(http):
    paths = http.get("/openapi.json").json()["paths"]
    for path, method in [
        ("/runs/stream", "post"), ("/threads/{thread_id}/runs/stream", "post"),
        ("/threads/{thread_id}/runs/{run_id}/stream", "get"), ("/threads/{thread_id}/stream", "get"),
    ]:
        assert list(paths[path][method]["responses"]["200"]["content"]) == ["text/event-stream"]
