"""The app's last resort for errors: a bug is a 500 (never a 422), answered in JSON on a connection
that stays usable; only orjson's own refusal of a value is a 422."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import orjson
import pytest
import uvicorn

from agent_server.api.app import create_app
from agent_server.config import Settings


def _app():
    app = create_app(Settings(config_path=Path("langgraph.json"), graphs={}, run_queue=False), runtime=object())

    @app.get("/boom")
    async def boom():
        raise RuntimeError("a bug")

    @app.get("/type-bug")
    async def type_bug():
        return {"n": len(5)}  # TypeError: a bug of ours, not the client's

    @app.get("/unencodable")
    async def unencodable():
        return {"n": 2**70}

    return app


def test_a_bare_type_error_is_not_mapped_to_bad_input():
    from agent_server.api.common import Unencodable

    handlers = _app().exception_handlers
    assert TypeError not in handlers
    assert Unencodable in handlers


@pytest.fixture
def served():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_app(), host="127.0.0.1", port=port, lifespan="off", log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def _exchange(sock: socket.socket, path: str) -> tuple[int, bytes]:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before answering {path}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    length = next(int(v) for k, _, v in (line.partition(": ") for line in lines[1:]) if k.lower() == "content-length")
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return int(lines[0].split()[1]), body


def test_an_unexpected_error_is_a_json_500_and_the_connection_stays_usable(served):
    with socket.create_connection(("127.0.0.1", served), timeout=10) as sock:
        for path in ("/boom", "/type-bug", "/boom"):
            status, body = _exchange(sock, path)
            assert (status, orjson.loads(body)) == (500, {"detail": "Internal Server Error"})
        status, body = _exchange(sock, "/unencodable")
        assert status == 422
        assert "Invalid value" in orjson.loads(body)["detail"]
