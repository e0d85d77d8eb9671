"""Health and server information, shaped as the official server's."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Literal

from fastapi import APIRouter, Request, Response

from .. import __version__
from ..services import system as service
from .common import JSONResponse, runtime

router = APIRouter(tags=["system"], default_response_class=JSONResponse)


@router.get("/ok")
async def ok(request: Request, check_db: int = 0):
    """Liveness; with ?check_db=1 also a round trip to PostgreSQL (unreachable: 503)."""
    if check_db:
        await service.check_database(runtime(request))
    return {"ok": True, "services": {}}


@router.get("/metrics")
async def metrics(request: Request, format: Literal["prometheus", "json"] = "prometheus"):
    """Queue depth, runs by status, this process's active runs, pool and broker subscriptions; in Prometheus
    text also this process's counters and histograms (requests, runs, SSE streams, worker slots)."""
    stats = await service.metrics(runtime(request), getattr(request.app.state, "worker", None))
    if format == "json":
        return stats
    return Response(service.prometheus_text(stats), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/info")
async def info(request: Request):
    paths = request.app.openapi().get("paths") or {}  # what is served (app.routes nests included routers)
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
        "persistence": service.persistence(runtime(request)),
    }


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None
