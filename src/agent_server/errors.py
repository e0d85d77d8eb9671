"""Typed errors; the API maps each to one HTTP status in one place (api/app.py)."""


class AgentServerError(Exception):
    status_code = 500
    retry_after: int | None = None  # seconds, sent as Retry-After: the condition is temporary

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(AgentServerError):
    status_code = 404


class Conflict(AgentServerError):
    status_code = 409


class Invalid(AgentServerError):
    status_code = 422


class BadRequest(AgentServerError):
    status_code = 400


class Unavailable(AgentServerError):
    status_code = 503
    retry_after = 5


class TooManyRequests(AgentServerError):
    status_code = 429
    retry_after = 1


class ConfigError(Exception):
    """The server cannot start: a bad langgraph.json, a graph that does not load, no database."""


BOTH_CONFIGURABLE_AND_CONTEXT = (
    "Cannot specify both configurable and context. Prefer setting context alone. Context was introduced in "
    "LangGraph 0.6.0 and is the long term planned replacement for configurable."
)
