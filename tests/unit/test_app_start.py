"""What a first request would otherwise build or load is done as the app starts: every route's handler (FastAPI
builds an included router's routes at the first request reaching it) and anyio's backend (loaded by its first
use). A first request is then as fast as the next, and nothing made in the middle of a first burst pins the
allocator's arenas (bench/RESULTS.md)."""
from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import types
from pathlib import Path

import httpx

from agent_server.api.app import create_app
from agent_server.config import Settings


def _app():
    return create_app(Settings(config_path=Path("langgraph.json"), graphs={}, run_queue=False), runtime=object())


def _route_handlers() -> int:
    return sum(1 for o in gc.get_objects()
               if type(o) is types.FunctionType and o.__qualname__ == "get_request_handler.<locals>.app")


def test_the_first_requests_build_no_route_handler():
    app = _app()
    built = _route_handlers()

    async def first_requests():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return [(await client.get("/ok")).status_code,
                    (await client.post("/threads/search", json={"limit": "many"})).status_code,
                    (await client.post("/store/items/search", json={"limit": "many"})).status_code]

    assert asyncio.run(first_requests()) == [200, 422, 422]
    assert _route_handlers() == built


def test_anyio_backend_is_loaded_as_the_app_starts():
    # a process of its own: this one has loaded it long ago
    code = """
import asyncio, sys, types
from pathlib import Path
from agent_server.api.app import create_app
from agent_server.config import Settings

runtime = types.SimpleNamespace(graphs=types.SimpleNamespace(ids=lambda: []))
app = create_app(Settings(config_path=Path("langgraph.json"), graphs={}, run_queue=False), runtime=runtime)

async def start():
    before = "anyio._backends._asyncio" in sys.modules
    async with app.router.lifespan_context(app):
        print(before, "anyio._backends._asyncio" in sys.modules)

asyncio.run(start())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
