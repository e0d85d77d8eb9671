"""Health and server information, shaped as the official server's."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Request

from .. import __version__
from .common import JSONResponse, runtime

router = APIRouter(tags=["system"], default_response_class=JSONResponse)


@router.get("/ok")
async def ok(request: Request, check_db: int = 0):
    """Liveness; with ?check_db=1 also a round trip to PostgreSQL (a failure is a 500)."""
    if check_db:
        async with runtime(request).pool.connection() as conn:
            await conn.execute("SELECT 1")
    return {"ok": True, "services": {}}


@router.get("/info")
async def info(request: Request):
    paths = {getattr(route, "path", "") for route in request.app.routes}
    return {
        "version": __version__,
        "langgraph_py_version": _version("langgraph"),
        "flags": {
            "assistants": True,
            "crons": any(p.startswith("/runs/crons") for p in paths),
            "langsmith": False,
            "langsmith_tracing_replicas": False,
            "langsmith_tracing_session_on_runs": False,
        },
        "host": {"kind": "self-hosted", "project_id": None, "host_revision_id": None, "revision_id": None, "tenant_id": None},
    }


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None
