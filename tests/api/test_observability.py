"""Observability: /metrics in Prometheus text, request and run ids on log lines, OpenTelemetry spans."""
from __future__ import annotations

import gzip
import json
import re
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from conftest import AGENT_SERVER, CONFIG, ServerProcess, create_database, drop_database, free_port

ECHO = {"assistant_id": "echo", "input": {"messages": []}}


def scrape(url: str) -> dict[str, float]:
    """Prometheus text as {series (name and labels): value}."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line and line[0] != "#"}


def eventually(check, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
    return result


def request_series(method: str, route: str, status: int) -> str:
    return f'agent_server_http_request_duration_seconds_count{{method="{method}",route="{route}",status="{status}"}}'


def test_metrics_count_requests_by_route_template_and_runs_by_status(server, http):
    before = scrape(server.url)
    assert http.post("/runs/wait", json=ECHO).status_code == 200
    unknown = uuid.uuid4()
    assert http.get(f"/threads/{unknown}").status_code == 404

    success = 'agent_server_runs_ended_total{status="success"}'
    after = eventually(lambda: (m := scrape(server.url)).get(success, 0) > before.get(success, 0) and m)
    assert after[request_series("POST", "/runs/wait", 200)] == before.get(request_series("POST", "/runs/wait", 200), 0) + 1
    assert after[request_series("GET", "/threads/{thread_id}", 404)] >= 1
    assert not any(str(unknown) in series for series in after)  # the route's template, never the raw path
    assert after["agent_server_runs_started_total"] > before.get("agent_server_runs_started_total", 0)
    assert after['agent_server_run_duration_seconds_count{status="success"}'] >= 1
    assert after["agent_server_worker_busy_slots"] + after["agent_server_worker_free_slots"] == 10
    assert after["agent_server_queue_depth"] >= 0 and after["agent_server_queue_oldest_pending_seconds"] >= 0
    assert after["agent_server_runs_pending"] >= 0 and after["agent_server_worker_capacity"] == 10  # the older names
    assert "queue_depth" in http.get("/metrics", params={"format": "json"}).json()


def test_open_sse_streams_are_counted(server, http):
    thread_id = http.post("/threads", json={}).json()["thread_id"]
    before = scrape(server.url)["agent_server_sse_streams_open"]
    with httpx.Client(base_url=server.url, timeout=30) as other:
        with other.stream("GET", f"/threads/{thread_id}/stream") as stream:
            assert stream.status_code == 200
            eventually(lambda: scrape(server.url)["agent_server_sse_streams_open"] == before + 1)
    eventually(lambda: scrape(server.url)["agent_server_sse_streams_open"] == before)


def test_request_ids_are_echoed_and_on_the_request_log_lines(server, http):
    mine = f"req-{uuid.uuid4().hex[:8]}"
    r = http.get(f"/threads/{uuid.uuid4()}", headers={"X-Request-ID": mine})
    assert r.headers["x-request-id"] == mine
    generated = {http.post("/threads/search", json={}, headers=h).headers["x-request-id"]
                 for h in ({}, {}, {"X-Request-ID": "not sane: has spaces"}, {"X-Request-ID": "x" * 500})}
    assert len(generated) == 4 and all(re.fullmatch(r"[0-9a-f]{32}", g) for g in generated)
    # dev logs readable text, the ids at the end of the line
    line = eventually(lambda: next((l for l in server.output().splitlines() if f"request_id={mine}" in l), None))
    assert "agent_server.access" in line and "404" in line


def test_serve_logs_one_json_object_per_line_with_run_and_request_ids(postgres_server):
    uri = create_database(postgres_server)
    srv = ServerProcess(env={"DATABASE_URI": uri}, command="serve", args=["--host", "127.0.0.1"])
    try:
        srv.wait_ready()
        thread_id = httpx.post(f"{srv.url}/threads", json={}).json()["thread_id"]
        r = httpx.post(f"{srv.url}/threads/{thread_id}/runs", json=ECHO, headers={"X-Request-ID": "create-1"})
        run_id = r.json()["run_id"]
        assert httpx.get(f"{srv.url}/threads/{thread_id}/runs/{run_id}/join", timeout=30).status_code == 200

        def lines():
            return [json.loads(line) for line in srv.output().splitlines() if line.strip()]  # every line is JSON

        ended = eventually(lambda: [e for e in lines() if e.get("run_id") == run_id and "ended" in e["message"]])
        of_run = [e for e in lines() if e.get("run_id") == run_id]
        assert any("started (attempt 1)" in e["message"] for e in of_run) and ended
        assert all(e["thread_id"] == thread_id and e["assistant_id"] for e in of_run)
        created = [e for e in lines() if e.get("request_id") == "create-1"]
        assert [e["message"] for e in created] == [f"POST /threads/{thread_id}/runs 200 " + created[0]["message"].split()[-1]]
        assert "run_id" not in created[0]  # a request's line is not a run's
    finally:
        srv.stop()
        drop_database(postgres_server, uri)


@pytest.mark.parametrize("env, json_lines", [({}, False), ({"LOG_JSON": "true"}, True), ({"LOG_JSON": "0"}, False)])
def test_log_json_switches_the_format(database_uri, env, json_lines):
    out = _migrate(database_uri, env)
    line = next(l for l in out.splitlines() if "schema is up to date" in l)
    if json_lines:
        assert json.loads(line)["level"] == "INFO"
    else:
        assert " INFO " in line and not line.startswith("{")


def test_log_level_is_honoured(database_uri):
    assert "schema is up to date" not in _migrate(database_uri, {"LOG_LEVEL": "WARNING"})


def _migrate(database_uri: str, env: dict) -> str:
    import os

    done = subprocess.run(
        [*AGENT_SERVER, "migrate", "--config", str(CONFIG)], capture_output=True, text=True, timeout=60,
        env={**os.environ, "DATABASE_URI": database_uri, "LOG_LEVEL": "INFO", **env},
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


# ---- OpenTelemetry: a tiny OTLP/HTTP receiver ---------------------------------------------------------

class Receiver:
    """Records the spans OTLP/HTTP exporters post to it, as dicts."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest, ExportTraceServiceResponse,
        )

        spans, lock = [], threading.Lock()
        self.spans, self._lock = spans, lock

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                with lock:
                    for resource in request.resource_spans:
                        for scope in resource.scope_spans:
                            spans.extend(_span(s) for s in scope.spans)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def find(self, check):
        with self._lock:
            return next((s for s in self.spans if check(s)), None)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _span(s) -> dict:
    return {
        "name": s.name, "kind": s.kind, "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
        "parent_span_id": s.parent_span_id.hex(),
        "attributes": {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in s.attributes},
    }


@pytest.fixture
def receiver():
    pytest.importorskip("opentelemetry.sdk")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    r = Receiver()
    yield r
    r.close()


def test_a_run_span_in_the_worker_continues_the_trace_of_the_request_that_created_it(
    receiver, postgres_server, redis_uri
):
    """Split mode: the API process and a worker process export spans; the run's span is a child of the
    request's, found through the trace context stored with the run. The worker serves its own metrics."""
    uri = create_database(postgres_server)
    metrics_port = free_port()
    env = {
        "DATABASE_URI": uri, "REDIS_URI": redis_uri, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    api = ServerProcess(env=env, command="serve", args=["--no-queue", "--host", "127.0.0.1"])
    worker = ServerProcess(env={**env, "AGENT_SERVER_METRICS_PORT": str(metrics_port)}, command="worker")
    try:
        api.wait_ready()
        worker.wait_for_log("running up to")
        trace_id = uuid.uuid4().hex
        traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"  # the client's own trace
        thread_id = httpx.post(f"{api.url}/threads", json={}).json()["thread_id"]
        run = httpx.post(f"{api.url}/threads/{thread_id}/runs", json=ECHO, headers={"traceparent": traceparent}).json()
        assert httpx.get(f"{api.url}/threads/{thread_id}/runs/{run['run_id']}/join", timeout=30).status_code == 200

        request = eventually(lambda: receiver.find(lambda s: s["attributes"].get("http.route") == "/threads/{thread_id}/runs"))
        assert request["trace_id"] == trace_id and request["name"] == "POST /threads/{thread_id}/runs"
        assert request["attributes"]["http.response.status_code"] == 200 and request["attributes"].get("agent_server.request_id"), request
        run_span = eventually(lambda: receiver.find(lambda s: s["attributes"].get("agent_server.run_id") == run["run_id"]))
        assert run_span["trace_id"] == trace_id and run_span["parent_span_id"] == request["span_id"]
        assert run_span["name"] == "run echo" and run_span["attributes"]["agent_server.thread_id"] == thread_id
        assert run_span["attributes"]["agent_server.run.status"] == "success"

        metrics = scrape(f"http://127.0.0.1:{metrics_port}")
        assert metrics['agent_server_runs_ended_total{status="success"}'] == 1
        assert metrics["agent_server_worker_busy_slots"] + metrics["agent_server_worker_free_slots"] == 10
        # a worker logs JSON: its lines of the run carry the run's ids
        assert any(json.loads(l).get("run_id") == run["run_id"] for l in worker.output().splitlines() if l.strip())
    finally:
        worker.stop()
        api.stop()
        drop_database(postgres_server, uri)
