"""Webhooks: a run created with `webhook` is POSTed to it when it ends, at least once, even when the worker
that ended it dies; a URL the policy refuses is a 422 at creation. The receiver is a small HTTP server on
127.0.0.1, which tests/langgraph.webhooks.json allows (`disable_loopback: false`)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from langgraph_sdk import get_client

from conftest import ServerProcess, TESTS, create_database, drop_database, running, stop_all
from run_helpers import HI, SLOW, new_thread, run_status, slow, wait_for

CONFIG = TESTS / "langgraph.webhooks.json"
TOKEN = {"LG_WEBHOOK_TOKEN": "t0ken"}  # for the header template of the config


class Receiver:
    """Records every POST; answers the statuses in `answers` first, then `default`."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: list[int] = []
        self.default = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = receiver.answers.pop(0) if receiver.answers else receiver.default
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body, "answered": status})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    async def wait(self, count: int, timeout: float = 15) -> list[dict]:
        """The requests once there are at least `count`."""
        return await wait_for(lambda: _ready(self.requests, count), timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def _ready(requests: list, count: int):
    return list(requests) if len(requests) >= count else None


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def hook_server(postgres_server):
    """A server with the webhooks config, on a database of its own: its deliverer alone delivers its webhooks."""
    db = create_database(postgres_server)
    try:
        yield from running(ServerProcess(config=CONFIG, env={"DATABASE_URI": db, **TOKEN}))
    finally:
        drop_database(postgres_server, db)


@pytest.fixture
def hook_client(hook_server):
    return get_client(url=hook_server.url)


async def test_a_run_ends_with_a_post_of_the_run_as_the_official_server_sends_it(hook_client, receiver):
    thread_id = await new_thread(hook_client)
    run = await hook_client.runs.create(thread_id, "echo", input=HI, webhook=receiver.url("/done?x=1"))
    await hook_client.runs.join(thread_id, run["run_id"])
    [request] = await receiver.wait(1)
    body, headers = request["body"], request["headers"]
    assert request["path"] == "/done?x=1"
    assert (body["run_id"], body["thread_id"], body["status"]) == (run["run_id"], thread_id, "success")
    assert body["assistant_id"] == run["assistant_id"] and body["kwargs"]["webhook"] == receiver.url("/done?x=1")
    assert [m["content"] for m in body["values"]["messages"]] == ["hi", "echo: hi"]
    assert "error" not in body
    for key in ("created_at", "updated_at", "run_started_at", "run_ended_at", "webhook_sent_at", "metadata", "multitask_strategy"):
        assert body[key] is not None, key
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Hook-Token"] == "Bearer t0ken"  # the config's header, its env template resolved
    assert headers["Idempotency-Key"]


async def test_a_failed_run_posts_its_error_and_a_stateless_run_its_values(hook_client, receiver):
    thread_id = await new_thread(hook_client)
    run = await hook_client.runs.create(thread_id, "failing", input={"fail": True}, webhook=receiver.url("/failed"))
    await hook_client.runs.join(thread_id, run["run_id"])
    await hook_client.runs.wait(None, "echo", input=HI, webhook=receiver.url("/stateless"))
    requests = {r["path"]: r["body"] for r in await receiver.wait(2)}
    failed = requests["/failed"]
    assert failed["status"] == "error" and failed["error"]["error"] == "ValueError"
    stateless = requests["/stateless"]
    assert stateless["status"] == "success" and stateless["kwargs"]["temporary"] is True
    assert stateless["values"]["messages"][-1]["content"] == "echo: hi"


async def test_a_pending_run_cancelled_posts_its_end(hook_client, receiver):
    thread_id = await new_thread(hook_client)
    first = await hook_client.runs.create(thread_id, SLOW, input={}, config=slow(0.3))
    queued = await hook_client.runs.create(thread_id, "echo", input=HI, webhook=receiver.url(), multitask_strategy="enqueue")
    await hook_client.runs.cancel(thread_id, queued["run_id"])
    [request] = await receiver.wait(1)
    assert (request["body"]["run_id"], request["body"]["status"]) == (queued["run_id"], "interrupted")
    assert request["body"]["error"]["error"] == "UserInterrupt"
    await hook_client.runs.cancel(thread_id, first["run_id"])


async def test_a_receiver_failing_with_a_5xx_gets_the_same_delivery_again(hook_client, hook_server, receiver):
    receiver.answers = [500, 503]
    thread_id = await new_thread(hook_client)
    run = await hook_client.runs.wait(thread_id, "echo", input=HI, webhook=receiver.url())
    requests = await receiver.wait(3, timeout=20)  # backoff: 1 s, then 2 s
    assert [r["answered"] for r in requests] == [500, 503, 200]
    assert len({r["headers"]["Idempotency-Key"] for r in requests}) == 1  # one delivery, tried three times
    assert {r["body"]["run_id"] for r in requests} == {(await hook_client.runs.list(thread_id))[0]["run_id"]}
    assert run["messages"][-1]["content"] == "echo: hi"  # the run did not wait for its webhook
    assert "trying again" in hook_server.output()


async def test_a_receiver_refusing_with_a_4xx_is_given_up_with_a_log_line(hook_client, hook_server, receiver):
    receiver.default = 404
    thread_id = await new_thread(hook_client)
    await hook_client.runs.wait(thread_id, "echo", input=HI, webhook=receiver.url("/gone"))
    await receiver.wait(1)
    hook_server.wait_for_log("given up: the receiver answered HTTP 404", timeout=10)
    await asyncio.sleep(1.5)  # past the first backoff: no second try
    assert len(receiver.requests) == 1


async def test_a_slow_receiver_does_not_delay_other_deliveries(hook_client, receiver):
    slow_receiver = _SlowReceiver()
    try:
        thread_id = await new_thread(hook_client)
        await hook_client.runs.wait(thread_id, "echo", input=HI, webhook=slow_receiver.url)
        await asyncio.to_thread(slow_receiver.called.wait, 10)  # its delivery is under way, and hangs
        other = await new_thread(hook_client)
        await hook_client.runs.wait(other, "echo", input=HI, webhook=receiver.url())
        [request] = await receiver.wait(1, timeout=5)
        assert request["body"]["thread_id"] == other
    finally:
        slow_receiver.close()


class _SlowReceiver:
    """Accepts connections and never answers."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/slow"
        self.called = threading.Event()
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            while True:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
                self.called.set()
        except OSError:
            pass

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.sock.close()


@pytest.mark.parametrize("url, reason", [
    ("http://10.0.0.1/hook", "private address"),
    ("http://192.168.0.10:8080/hook", "private address"),
    ("http://169.254.169.254/latest/meta-data", "cloud metadata"),
    ("http://metadata.google.internal/x", "internal service"),
])
async def test_a_webhook_to_an_internal_address_is_refused_at_creation(hook_server, url, reason):
    async with httpx.AsyncClient(base_url=hook_server.url) as http:
        thread_id = (await http.post("/threads", json={})).json()["thread_id"]
        r = await http.post(f"/threads/{thread_id}/runs", json={"assistant_id": "echo", "input": HI, "webhook": url})
        assert r.status_code == 422, r.text
        assert "webhook" in r.json()["detail"] and reason in r.json()["detail"]
        r = await http.post("/runs/wait", json={"assistant_id": "echo", "input": HI, "webhook": url})
        assert r.status_code == 422, r.text
        assert (await http.get(f"/threads/{thread_id}/runs")).json() == []  # nothing was queued


async def test_loopback_is_refused_unless_the_config_allows_it(client, http):
    """The session server has no `webhooks` section: 127.0.0.1 and localhost are refused."""
    thread_id = await new_thread(client)
    for url in ("http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://[::1]:9/hook"):
        r = http.post(f"/threads/{thread_id}/runs", json={"assistant_id": "echo", "webhook": url})
        assert r.status_code == 422, (url, r.text)
        assert "disable_loopback" in r.json()["detail"]
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await client.runs.create(thread_id, "echo", input=HI, webhook="http://127.0.0.1:9/hook")
    assert refused.value.response.status_code == 422


async def test_a_webhook_is_delivered_after_the_worker_that_ended_its_run_was_killed(postgres_server, redis_uri, receiver):
    """The run's end and its webhook commit together: a worker killed before delivering leaves it for another."""
    db = create_database(postgres_server)
    env = {"DATABASE_URI": db, "REDIS_URI": redis_uri, **TOKEN}
    procs: list[ServerProcess] = []
    try:
        api = ServerProcess(config=CONFIG, env=env, command="serve", args=["--no-queue", "--host", "127.0.0.1"])
        procs.append(api)
        api.wait_ready()
        first = ServerProcess(config=CONFIG, env=env, command="worker")
        procs.append(first)
        first.wait_for_log("running up to")
        client = get_client(url=api.url)

        receiver.default = 500  # the receiver is down while the first worker lives
        thread_id = await new_thread(client)
        run = await client.runs.create(thread_id, "echo", input=HI, webhook=receiver.url())
        await run_status(client, thread_id, run["run_id"], {"success"})
        [tried] = await receiver.wait(1)
        await asyncio.sleep(0.3)  # its retry is scheduled (in 1 s), not under way
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
        receiver.default = 200

        second = ServerProcess(config=CONFIG, env=env, command="worker")
        procs.append(second)
        second.wait_for_log("running up to")
        delivered = (await receiver.wait(2))[-1]
        assert delivered["answered"] == 200 and delivered["body"]["run_id"] == run["run_id"]
        assert delivered["headers"]["Idempotency-Key"] == tried["headers"]["Idempotency-Key"]
        assert "delivered" in second.wait_for_log(f"webhook of run {run['run_id']} delivered").output()
    finally:
        stop_all(procs)
        drop_database(postgres_server, db)
