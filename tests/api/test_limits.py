"""Request body limits (AGENT_SERVER_MAX_BODY_BYTES, AGENT_SERVER_BODY_TIMEOUT_SECS) on a server of its own:
a body over the limit is a 413 before it is read, a client that stalls mid-body a 408, and the connection
is closed either way."""
from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from conftest import ServerProcess, create_database, drop_database, running

LIMIT = 1000


@pytest.fixture(scope="module")
def limited_server(postgres_server):
    uri = create_database(postgres_server)
    try:
        yield from running(ServerProcess(env={
            "DATABASE_URI": uri, "AGENT_SERVER_MAX_BODY_BYTES": str(LIMIT), "AGENT_SERVER_BODY_TIMEOUT_SECS": "1",
        }))
    finally:
        drop_database(postgres_server, uri)


def _body(size: int) -> bytes:
    """A valid thread-creation body of exactly `size` bytes."""
    head = b'{"metadata": {"pad": "'
    tail = b'"}}'
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    json.loads(body)
    assert len(body) == size
    return body


def _raw(server, request: bytes, wait: float = 15) -> tuple[bytes, float]:
    """Send `request` on a socket of its own; everything the server answers until it closes, and how long that took."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        started = time.monotonic()
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer, time.monotonic() - started


def _status_and_detail(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def test_under_the_limit_is_answered_as_usual(limited_server):
    r = httpx.post(f"{limited_server.url}/threads", content=_body(LIMIT),
                   headers={"content-type": "application/json"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["pad"].startswith("x")


def test_under_the_limit_chunked_is_answered_as_usual(limited_server):
    def chunks():
        body = _body(LIMIT)
        yield body[:400]
        yield body[400:]

    r = httpx.post(f"{limited_server.url}/threads", content=chunks(),
                   headers={"content-type": "application/json"}, timeout=10)
    assert r.status_code == 200, r.text


def test_content_length_over_the_limit_is_413_before_the_body_is_read(limited_server):
    # Headers only: the answer must come without the server waiting for the body.
    request = (
        f"POST /threads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {100 * 1024 * 1024}\r\n\r\n"
    ).encode()
    answer, took = _raw(limited_server, request)
    status, detail = _status_and_detail(answer)
    assert status == 413
    assert "1000 bytes" in detail["detail"]
    assert took < 5


def test_content_length_over_the_limit_with_httpx(limited_server):
    r = httpx.post(f"{limited_server.url}/threads", content=_body(LIMIT + 1),
                   headers={"content-type": "application/json"}, timeout=10)
    assert r.status_code == 413
    assert "detail" in r.json()


def test_chunked_over_the_limit_is_413(limited_server):
    body = _body(3 * LIMIT)
    request = b"POST /threads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    for i in range(0, len(body), 500):
        part = body[i:i + 500]
        request += f"{len(part):x}\r\n".encode() + part + b"\r\n"
    request += b"0\r\n\r\n"
    answer, _ = _raw(limited_server, request)
    status, detail = _status_and_detail(answer)
    assert status == 413
    assert "detail" in detail


def test_chunked_over_the_limit_answers_before_the_rest_is_sent(limited_server):
    """A chunked body is cut short as soon as it passes the limit, not when it ends (it never does here)."""
    body = _body(2 * LIMIT)
    request = (b"POST /threads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
               + f"{len(body):x}\r\n".encode() + body + b"\r\n")  # no last chunk: the body is unfinished
    answer, took = _raw(limited_server, request)
    status, _ = _status_and_detail(answer)
    assert status == 413
    assert took < 5


def test_a_client_that_stalls_mid_body_gets_408_and_is_closed(limited_server):
    request = b"POST /threads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    request += b'{"metadata'  # 10 of the 100 bytes, then nothing
    answer, took = _raw(limited_server, request, wait=15)  # _raw returns once the server closes
    status, detail = _status_and_detail(answer)
    assert status == 408
    assert "detail" in detail
    assert took < 10  # the timeout is 1 s; generous for a loaded machine


def test_the_server_still_answers_after_all_that(limited_server):
    assert httpx.get(f"{limited_server.url}/ok", timeout=10).status_code == 200


def test_default_limit_is_16_mib(server):
    """The shared server (default settings): a 17 MiB Content-Length is refused from its headers alone."""
    request = (f"POST /threads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {17 * 1024 * 1024}\r\n\r\n").encode()
    answer, took = _raw(server, request)
    status, detail = _status_and_detail(answer)
    assert status == 413
    assert str(16 * 1024 * 1024) in detail["detail"]


@pytest.mark.parametrize("sent", [b"", b"POST /threads HTTP/1.1\r\nHost: x\r\nContent-"], ids=["nothing", "half a head"])
def test_a_client_that_stalls_before_the_end_of_the_head_is_disconnected(limited_server, sent):
    """uvicorn alone would hold such a connection (and its file descriptor) forever."""
    with socket.create_connection(("127.0.0.1", limited_server.port), timeout=15) as sock:
        started = time.monotonic()
        sock.sendall(sent)
        assert sock.recv(65536) == b""  # closed, with no answer
        assert time.monotonic() - started < 10  # the timeout is 1 s; generous for a loaded machine


def test_a_head_sent_slowly_is_cut_at_the_timeout_however_it_trickles(limited_server):
    with socket.create_connection(("127.0.0.1", limited_server.port), timeout=15) as sock:
        started = time.monotonic()
        closed = False
        for byte in b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 100:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.1)  # 0.1 s a byte: the head would take 12 s
        if not closed:
            assert sock.recv(65536) == b""
        assert time.monotonic() - started < 10


def test_keep_alive_requests_are_not_cut(limited_server):
    """The head timeout (1 s here) is for a head in progress: an idle keep-alive connection between requests
    is left to uvicorn's keep-alive timeout (5 s)."""
    with socket.create_connection(("127.0.0.1", limited_server.port), timeout=10) as sock:
        for _ in range(3):
            sock.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
                chunk = sock.recv(65536)
                assert chunk, f"closed after {answer!r}"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200")
            time.sleep(1.5)
