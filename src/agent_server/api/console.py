"""The console: a web UI served from the package's own static files (no CDN, no build step), a client of
the public API like the SDKs. Open to anyone (api/auth.py): the console asks for the credentials itself."""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

ROOT = (Path(__file__).parent.parent / "console").resolve()
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}

router = APIRouter(include_in_schema=False)


@router.get("/console")
async def console_root():
    return RedirectResponse("console/", status_code=307)  # relative: right under a mount_prefix too


@router.get("/console/{path:path}")
async def console_file(path: str):
    file = (ROOT / (path or "index.html")).resolve()
    if not file.is_relative_to(ROOT) or not file.is_file() or file.suffix not in TYPES:
        raise HTTPException(404, "Not Found")
    # no-cache: revalidated each load, so an upgraded server never runs a stale console
    return FileResponse(file, media_type=TYPES[file.suffix], headers={"Cache-Control": "no-cache"})
