"""The SSE response in-process: its cleanup runs whether or not its body ever starts."""
from __future__ import annotations

import asyncio

import pytest
from starlette.requests import ClientDisconnect

from agent_server.api.sse import EventStream


async def test_a_stream_whose_body_never_starts_still_runs_its_cleanup():
    """Under an ASGI 2.4 server, Starlette starts no body once sending the response head fails (the client
    has gone): cleanup in the events generator would never run. The same with a request cancelled before."""
    started, closed = [], []

    async def events():
        started.append(True)
        yield "metadata", b"{}", ""

    async def on_close():
        closed.append(True)

    async def gone(message):
        raise OSError("the client has gone")

    async def nothing():
        return {"type": "http.disconnect"}

    scope = {"type": "http", "asgi": {"spec_version": "2.4"}}
    with pytest.raises(ClientDisconnect):
        await EventStream(events(), on_close=on_close)(scope, nothing, gone)
    assert (started, closed) == ([], [True])


async def test_events_ready_together_go_in_one_write_and_none_waits_for_a_batch():
    """Five events waiting at once: one body message; then one that comes alone: its own message, sent before
    the next is asked for (a batch is never waited for)."""
    waiting = ["a", "b", "c", "d", "e"]
    asked_after_last: list[bool] = []
    sent: list[bytes] = []

    async def events():
        while waiting:
            yield waiting.pop(0), b"{}", ""
        yield "late", b"{}", "7"
        asked_after_last.append(any(b"late" in body for body in sent))

    async def send(message):
        if message["type"] == "http.response.body" and message.get("body"):
            sent.append(message["body"])

    asked = []

    async def receive():  # the (empty) body, then nothing until the client leaves, as a server gives them
        asked.append(True)
        if len(asked) > 1:
            await asyncio.Event().wait()
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "asgi": {"spec_version": "2.4"}, "method": "GET", "headers": []}
    await EventStream(events(), ready=lambda: bool(waiting))(scope, receive, send)
    assert sent == [
        b"".join(b"event: %s\ndata: {}\n\n" % name.encode() for name in "abcde"),
        b"event: late\ndata: {}\nid: 7\n\n",
    ]
    assert asked_after_last == [True]


def _waiting_stream(closed: list[str]):
    """A stream that sends one event, then waits for a next one that never comes."""

    async def events():
        try:
            yield "metadata", b"{}", "0"
            await asyncio.Event().wait()
            yield "never", b"{}", "1"
        finally:
            closed.append("events")

    async def on_close():
        closed.append("on_close")

    return EventStream(events(), on_close=on_close)


def _sender(first: asyncio.Event):
    """A server's send that sets `first` once the response's first bytes of body are out."""

    async def send(message):
        if message.get("body"):
            first.set()

    return send


async def test_a_client_leaving_mid_stream_ends_the_response_quietly():
    """The disconnect stops the stream where it waits; the response returns (no error for the server to log),
    lets go of what it held, and leaves its task with no cancellation pending."""
    closed: list[str] = []
    sent: list[bytes] = []
    left = asyncio.Event()

    async def send(message):
        if message.get("body"):
            sent.append(message["body"])
            left.set()  # the client goes once it has the first event

    async def receive():
        await left.wait()
        return {"type": "http.disconnect"}

    async def respond():
        await _waiting_stream(closed)(SCOPE_23, receive, send)
        return asyncio.current_task().cancelling()

    assert await asyncio.wait_for(respond(), 5) == 0
    assert sent == [b"event: metadata\ndata: {}\nid: 0\n\n"]
    assert closed == ["events", "on_close"]


async def test_a_stream_cancelled_by_the_server_stays_cancelled():
    """Not the client leaving: a cancellation from outside (the server stopping) goes through, cleanup first."""
    closed: list[str] = []
    first = asyncio.Event()

    async def receive():
        await asyncio.Event().wait()  # the client stays

    task = asyncio.ensure_future(_waiting_stream(closed)(SCOPE_23, receive, _sender(first)))
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closed == ["events", "on_close"]


async def test_a_server_cancelling_as_the_client_leaves_still_cancels():
    """Both at once, before the stream runs again: the client's leaving is no reason to drop the server's."""
    closed: list[str] = []
    go = asyncio.Event()
    task: asyncio.Task | None = None

    async def receive():
        await go.wait()
        asyncio.get_running_loop().call_soon(task.cancel)  # in the same loop pass as the leaving below
        return {"type": "http.disconnect"}

    task = asyncio.ensure_future(_waiting_stream(closed)(SCOPE_23, receive, _sender(go)))
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(task), 5)
    assert task.cancelled() and closed == ["events", "on_close"]


async def test_a_request_that_fails_to_read_ends_its_stream_with_that_error():
    """Reading the request can fail under way (a body refused: api/limits.py); the stream stops, lets go of what
    it held and the error comes out, as with Starlette's own streaming response."""
    closed: list[str] = []
    first = asyncio.Event()

    async def receive():
        await first.wait()
        raise ValueError("the body was refused")

    with pytest.raises(ValueError, match="refused"):
        await asyncio.wait_for(_waiting_stream(closed)(SCOPE_23, receive, _sender(first)), 5)
    assert closed == ["events", "on_close"]


@pytest.mark.parametrize("passes", range(5))
async def test_a_client_leaving_as_the_stream_ends_leaves_nothing_behind(passes):
    """The client goes a few loop passes either side of the stream's end: the request goes on after the response
    with no cancellation pending or to come."""

    async def events():
        yield "values", b"{}", "1"
        for _ in range(passes):
            await asyncio.sleep(0)

    async def receive():
        for _ in range(2):
            await asyncio.sleep(0)
        return {"type": "http.disconnect"}

    async def send(message):
        pass

    async def request():
        await EventStream(events())(SCOPE_23, receive, send)
        for _ in range(3):
            await asyncio.sleep(0)  # where a stray cancellation would land
        return asyncio.current_task().cancelling()

    assert await asyncio.wait_for(request(), 5) == 0


SCOPE_23 = {"type": "http", "asgi": {"spec_version": "2.3"}, "method": "GET", "headers": []}  # uvicorn's
