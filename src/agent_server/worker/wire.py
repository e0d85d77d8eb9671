"""Distributed mode's transport between an orchestrator and its executors: gRPC (grpcio), two methods of one
service, with bytes messages (generic handlers: no compiled .proto).

- `Execute`, bidirectional stream. The orchestrator sends `{"run": <the claimed run>}`, later perhaps
  `{"cancel": "interrupt" | "rollback" | "release"}`; the executor answers with the run's events as the broker
  carries them (`broker.pack(name, payload)`): the stream events, then ENDING (the
  `executor.Ending` as JSON). A stream that ends without ENDING lost its executor.
- `Status`, unary: the orchestrator's heartbeat; the executor answers `{"executor_id", "slots", "busy"}`.

Every call carries the shared secret (AGENT_SERVER_EXECUTOR_SECRET) in its metadata; the executor refuses a call
without it (UNAUTHENTICATED)."""
from __future__ import annotations

import hmac
import os
from uuid import UUID

import grpc

from ..errors import ConfigError

SERVICE = "agent_server.Executor"
EXECUTE = f"/{SERVICE}/Execute"
STATUS = f"/{SERVICE}/Status"
SECRET_ENV = "AGENT_SERVER_EXECUTOR_SECRET"
SECRET_HEADER = "x-agent-server-executor-secret"
ENDING = "__ending__"  # an internal event name: no stream event is called so
# Events and states can be large (a graph's whole state); gRPC's default cap is 4 MiB.
OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def secret() -> str:
    value = os.environ.get(SECRET_ENV, "")
    if not value:
        raise ConfigError(f"distributed mode needs {SECRET_ENV}: the secret orchestrators and executors share")
    return value


def metadata(shared_secret: str) -> tuple:
    return ((SECRET_HEADER, shared_secret),)


class SecretCheck(grpc.aio.ServerInterceptor):
    """Refuse every call that does not carry the shared secret."""

    def __init__(self, shared_secret: str) -> None:
        self.secret = shared_secret.encode()

    async def intercept_service(self, continuation, details):
        given = dict(details.invocation_metadata or ()).get(SECRET_HEADER, "")
        if hmac.compare_digest(given.encode() if isinstance(given, str) else given, self.secret):
            return await continuation(details)
        return _REFUSED.get(details.method.rsplit("/", 1)[-1], _REFUSED["Status"])


async def _refuse(request, context):
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "wrong or missing executor secret")


_REFUSED = {
    "Execute": grpc.stream_stream_rpc_method_handler(_refuse),
    "Status": grpc.unary_unary_rpc_method_handler(_refuse),
}


def run_from_wire(run: dict) -> dict:
    """A claimed run as the orchestrator sent it (JSON): its ids as UUIDs again."""
    return {**run, "run_id": UUID(run["run_id"]), "thread_id": UUID(run["thread_id"])}
