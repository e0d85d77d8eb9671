"""Health and server information."""
from __future__ import annotations

from fastapi import APIRouter, Request

from .. import __version__
from .common import JSONResponse, runtime

router = APIRouter(tags=["system"], default_response_class=JSONResponse)


@router.get("/ok")
async def ok():
    return {"ok": True}


@router.get("/info")
async def info(request: Request):
    rt = runtime(request)
    return {
        "version": __version__,
        "langgraph_py_version": _version("langgraph"),
        "flags": {"assistants": True, "crons": False, "langsmith": False, "langsmith_tracing_replicas": False},
        "host": {"kind": "agent-server", "project_id": None, "host_revision_id": None, "revision_id": None, "tenant_id": None},
        "metadata": {"graphs": rt.graphs.ids()},
    }


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None
