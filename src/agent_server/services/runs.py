"""Runs: creation with multitask strategies, cancellation, waiting, streaming and joining."""
from __future__ import annotations

from uuid import UUID

from .. import runs as _runs
from . import Context


async def cancel(rt, ctx: Context, thread_id: UUID | None, run_ids: list[UUID] | None, action: str, **kw) -> None:
    await _runs.cancel_runs(rt, thread_id, run_ids, action, **kw)
