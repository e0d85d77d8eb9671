"""Server-sent events: the framing of the official server, heartbeats on idle streams."""
from __future__ import annotations

from typing import AsyncGenerator, Awaitable, Callable

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ..observability import SSE_STREAMS

HEARTBEAT = b": heartbeat\n\n"


BATCH = 256  # events in one write at most


def _frame(event: str, data: bytes, event_id: str) -> bytes:
    return frame(event, data, event_id) if event else HEARTBEAT


def frame(event: str, data: bytes, event_id: str = "") -> bytes:
    out = b"event: " + event.encode() + b"\ndata: " + data + b"\n"
    return out + (b"id: " + event_id.encode() + b"\n\n" if event_id else b"\n")


class EventStream(StreamingResponse):
    """SSE of (event, data, id); empty names are heartbeats.

    `ready`: whether the next event is already there. Events that are ready together go to the client in one
    write (a loaded process, or a fast run, has several waiting when the stream gets its turn): one pass through
    the middleware and one send per batch rather than per event. Nothing waits to fill a batch.

    `on_close` runs once the response is over, however it ended: the events ran out, the client left, an
    error. A `finally` in the events generator is not enough: a client gone before the first byte makes
    Starlette cancel the response before it ever starts the generator, and then its `finally` never runs."""

    media_type = "text/event-stream"  # the routes' response_class: /openapi.json says so

    def __init__(
        self, events: AsyncGenerator[tuple[str, bytes, str], None], headers: dict[str, str] | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None, ready: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(
            self._frames(events, ready),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no", **(headers or {})},
        )
        self._events, self._on_close = events, on_close

    @staticmethod
    async def _frames(events, ready):
        async for item in events:
            frames = [_frame(*item)]
            while ready is not None and ready() and len(frames) < BATCH:
                try:
                    frames.append(_frame(*await anext(events)))
                except StopAsyncIteration:
                    break
            yield frames[0] if len(frames) == 1 else b"".join(frames)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        SSE_STREAMS.inc()
        try:
            await super().__call__(scope, receive, send)
        finally:
            SSE_STREAMS.dec()
            with anyio.CancelScope(shield=True):  # a cancelled request still lets go of what it holds
                await self._events.aclose()
                if self._on_close is not None:
                    await self._on_close()


sse_response = EventStream  # the name the routes know
