"""Distributed mode's transport between an orchestrator and its executors: gRPC (grpcio), two methods of one
service, with bytes messages (generic handlers: no compiled .proto).

- `Execute`, bidirectional stream. The orchestrator sends `{"run": <the claimed run>}`, later perhaps
  `{"cancel": "interrupt" | "rollback" | "release"}`; the executor answers with the run's events as the broker
  carries them (`broker.pack(name, payload)`): the stream events, then ENDING (the
  `executor.Ending` as JSON). A stream that ends without ENDING lost its executor.
- `Status`, unary: the orchestrator's heartbeat; the executor answers `{"executor_id", "slots", "busy"}`.

Every call carries the shared secret (AGENT_SERVER_EXECUTOR_SECRET) in its metadata; the executor refuses a call
without it (UNAUTHENTICATED). With AGENT_SERVER_EXECUTOR_TLS_CERT and _KEY an executor serves TLS only; with
AGENT_SERVER_EXECUTOR_TLS_CA an orchestrator connects over TLS, trusting the executors that CA signed."""
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
TLS_CERT_ENV = "AGENT_SERVER_EXECUTOR_TLS_CERT"  # an executor's certificate (chain), a PEM file
TLS_KEY_ENV = "AGENT_SERVER_EXECUTOR_TLS_KEY"  # its private key, a PEM file
TLS_CA_ENV = "AGENT_SERVER_EXECUTOR_TLS_CA"  # what an orchestrator trusts the executors' certificates by, a PEM file
SECRET_HEADER = "x-agent-server-executor-secret"
ENDING = "__ending__"  # an internal event name: no stream event is called so
# Events and states can be large (a graph's whole state); gRPC's default cap is 4 MiB.
OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def secret() -> str:
    value = os.environ.get(SECRET_ENV, "")
    if not value:
        raise ConfigError(f"distributed mode needs {SECRET_ENV}: the secret orchestrators and executors share")
    return value


def _pem(env: str) -> bytes:
    path = os.environ[env]
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ConfigError(f"{env}: cannot read {path}: {exc.strerror}") from None


def server_credentials() -> grpc.ServerCredentials | None:
    """An executor's TLS credentials, or None (plaintext) when neither its certificate nor its key is set."""
    given = [env for env in (TLS_CERT_ENV, TLS_KEY_ENV) if os.environ.get(env)]
    if not given:
        return None
    if len(given) == 1:
        raise ConfigError(f"TLS for an executor needs both {TLS_CERT_ENV} and {TLS_KEY_ENV}; only {given[0]} is set")
    return grpc.ssl_server_credentials([(_pem(TLS_KEY_ENV), _pem(TLS_CERT_ENV))])


def channel(address: str) -> grpc.aio.Channel:
    """An orchestrator's channel to an executor: TLS when AGENT_SERVER_EXECUTOR_TLS_CA is set, else plaintext."""
    if not os.environ.get(TLS_CA_ENV):
        return grpc.aio.insecure_channel(address, options=OPTIONS)
    return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=_pem(TLS_CA_ENV)), options=OPTIONS)


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
