"""How a run stands and how an execution of it ended: one vocabulary for storage, worker and API."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"


INFLIGHT = (RunStatus.PENDING, RunStatus.RUNNING)
FINISHED = (RunStatus.SUCCESS, RunStatus.ERROR, RunStatus.TIMEOUT, RunStatus.INTERRUPTED)

# How a cancel leaves the thread (status, error name), as the official server does.
CANCEL_ACTIONS = {"interrupt": ("interrupted", "UserInterrupt"), "rollback": ("idle", "UserRollback")}


def cancel_error(action: str) -> dict:
    """The thread's error after a cancel, worded as the official server words it."""
    name = CANCEL_ACTIONS[action][1]
    return {"error": name, "message": f"{action} requested via POST /threads/{{thread_id}}/runs/{{run_id}}/cancel"}


@dataclass(frozen=True)
class RunOutcome:
    """How one execution of a run ended.

    `status` None: the run did not end; it goes back to the queue (`retry`: because our own database
    failed, after a backoff and counted against a cap; otherwise a graceful hand-back, not counted)."""

    status: RunStatus | None
    error: dict | None = None
    cancel: str | None = None  # the cancel action that ended it: interrupt | rollback
    retry: bool = False

    @classmethod
    def success(cls) -> "RunOutcome":
        return cls(RunStatus.SUCCESS)

    @classmethod
    def failed(cls, exc: BaseException, status: RunStatus = RunStatus.ERROR, message: str | None = None) -> "RunOutcome":
        return cls(status, {"error": type(exc).__name__, "message": message or str(exc)})

    @classmethod
    def cancelled(cls, action: str) -> "RunOutcome":
        return cls(RunStatus.INTERRUPTED, cancel=action)

    @classmethod
    def handed_back(cls, retry: bool = False) -> "RunOutcome":
        return cls(None, retry=retry)
