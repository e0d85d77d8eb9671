"""Request body limits as pure ASGI middleware, before anything buffers the body.

A body over `max_body_bytes` is answered 413 at once when its Content-Length says so, otherwise
(chunked) as soon as the bytes received pass the limit. A client that stops sending its body for
`body_timeout_secs` is answered 408. Both answers close the connection; whatever the application
does after (it sees a disconnect) is not sent."""
from __future__ import annotations

import asyncio

import orjson

from .common import send_json


class _Answered(Exception):
    """We answered the request ourselves: the application's reading of the body ends here."""


class BodyLimitMiddleware:
    def __init__(self, app, max_body_bytes: int, body_timeout_secs: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_secs = body_timeout_secs

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_large = int(value) > limit
                except ValueError:
                    too_large = False  # the HTTP parser rejects it before we see it
                if too_large:
                    await _answer(send, 413, _too_large(limit))
                    return

        received = 0
        body_done = False
        answered = False
        started = False

        async def limited_receive():
            nonlocal received, body_done, answered
            if body_done or answered:
                if answered:
                    return {"type": "http.disconnect"}
                return await receive()
            try:
                async with asyncio.timeout(self.body_timeout_secs):  # no task per receive, unlike wait_for
                    message = await receive()
            except TimeoutError:
                await reply(408, f"The request body was not received within {self.body_timeout_secs:g} seconds.")
                raise _Answered from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    await reply(413, _too_large(limit))
                    raise _Answered
                if not message.get("more_body", False):
                    body_done = True
            return message

        async def reply(status: int, detail: str) -> None:
            nonlocal answered
            answered = True
            if not started:
                await _answer(send, status, detail)

        async def guarded_send(message) -> None:
            nonlocal started
            if answered:
                return  # we already answered; the application's answer goes nowhere
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not answered:
                raise
            # the application failed on the body we cut short (400 parse error, ClientDisconnect): answered


def _too_large(limit: int) -> str:
    return f"The request body exceeds the limit of {limit} bytes (AGENT_SERVER_MAX_BODY_BYTES)."


async def _answer(send, status: int, detail: str) -> None:
    await send_json(send, status, orjson.dumps({"detail": detail}), close=True)


def head_timeout_protocol(head_timeout_secs: float):
    """uvicorn's HTTP protocol (httptools when installed, else h11), with a limit uvicorn lacks: a request's
    head (request line and headers) must arrive in full within `head_timeout_secs` of its first byte (or of
    the connection), else the connection is closed. Sending it slowly does not extend the limit."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:  # httptools not installed
        from uvicorn.protocols.http.h11_impl import H11Protocol as base

    class HeadTimeoutProtocol(base):
        _head_timer = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm_head_timer()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._awaiting_head():
                self._arm_head_timer()  # a head begun: it has head_timeout_secs from now, however it trickles
            else:
                self._cancel_head_timer()

        def connection_lost(self, exc) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def _awaiting_head(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm_head_timer(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(head_timeout_secs, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self._awaiting_head() and not self.transport.is_closing():
                self.transport.close()

    return HeadTimeoutProtocol
