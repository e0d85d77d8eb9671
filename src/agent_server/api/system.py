"""Health and server information, shaped as the official server's."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Literal

from fastapi import APIRouter, Request, Response

from .. import __version__
from ..storage import database
from .common import JSONResponse, runtime

router = APIRouter(tags=["system"], default_response_class=JSONResponse)


@router.get("/ok")
async def ok(request: Request, check_db: int = 0):
    """Liveness; with ?check_db=1 also a round trip to PostgreSQL (a failure is a 500)."""
    if check_db:
        await database.ping(runtime(request).pool)
    return {"ok": True, "services": {}}


@router.get("/metrics")
async def metrics(request: Request, format: Literal["prometheus", "json"] = "prometheus"):
    """Queue depth, runs by status, this process's active runs, connection pool and open broker subscriptions
    (streams, waiters and the queue's own), for monitoring."""
    rt = runtime(request)
    worker = getattr(request.app.state, "worker", None)
    pool = rt.pool.get_stats()
    stats = {
        **await rt.runs.queue_stats(),
        "worker_active_runs": float(len(worker.active) if worker else 0),
        "worker_capacity": float(worker.concurrency if worker else 0),
        "pool_size": float(pool.get("pool_size", 0)),
        "pool_available": float(pool.get("pool_available", 0)),
        "pool_requests_waiting": float(pool.get("requests_waiting", 0)),
        "broker_subscriptions": float(rt.broker.subscription_count),
    }
    if format == "json":
        return stats
    text = "".join(f"agent_server_{name} {value:g}\n" for name, value in stats.items())
    return Response(text, media_type="text/plain; version=0.0.4")


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
