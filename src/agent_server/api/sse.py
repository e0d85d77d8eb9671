"""Server-sent events: the framing of the official server, heartbeats on idle streams."""
from __future__ import annotations

import asyncio
from typing import AsyncGenerator, Awaitable, Callable

import anyio
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from ..observability import SSE_STREAMS

HEARTBEAT = b": heartbeat\n\n"


BATCH = 256  # events in one write at most


def _every(event: str) -> bool:
    return True


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

    `keep`: which events (by name) this client gets; the others are passed over, and a batch never waits for
    one it keeps.

    `on_close` runs once the response is over, however it ended: the events ran out, the client left, an
    error. A `finally` in the events generator is not enough: a client gone before the first byte makes
    Starlette cancel the response before it ever starts the generator, and then its `finally` never runs."""

    media_type = "text/event-stream"  # the routes' response_class: /openapi.json says so

    def __init__(
        self, events: AsyncGenerator[tuple[str, bytes, str], None], headers: dict[str, str] | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None, ready: Callable[[], bool] | None = None,
        keep: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__(
            self._frames(events, ready, keep or _every),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no", **(headers or {})},
        )
        self._events, self._on_close = events, on_close

    @staticmethod
    async def _frames(events, ready, keep):
        async for item in events:
            if not keep(item[0]):
                continue
            frames = [_frame(*item)]
            while ready is not None and ready() and len(frames) < BATCH:
                try:
                    item = await anext(events)
                except StopAsyncIteration:
                    break
                if keep(item[0]):
                    frames.append(_frame(*item))
            yield frames[0] if len(frames) == 1 else b"".join(frames)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        SSE_STREAMS.inc()
        try:
            await self._stream_until_gone(receive, send)
        finally:
            SSE_STREAMS.dec()
            with anyio.CancelScope(shield=True):  # a cancelled request still lets go of what it holds
                await self._events.aclose()
                if self._on_close is not None:
                    await self._on_close()

    async def _stream_until_gone(self, receive: Receive, send: Send) -> None:
        """The events until they end or the client leaves (the stream is then cancelled where it waits, and this
        returns; if reading the request failed instead, it raises that). Starlette does it with a task group
        running the stream and a disconnect listener; one plain task listening beside the request's own costs a
        fifth of that to open and close, and less than half the memory, which counts with a thousand streams open
        (bench/RESULTS.md, many open streams)."""
        stream = asyncio.current_task()
        over = left = False

        def leave(listener: asyncio.Future) -> None:
            nonlocal left
            if not over and not listener.cancelled():  # gone, or reading the request failed (raised below)
                left = True
                stream.cancel()

        listener = asyncio.ensure_future(_disconnected(receive))
        listener.add_done_callback(leave)
        try:
            await self.stream_response(send)
        except asyncio.CancelledError:
            if not left or stream.uncancel() > 0:  # cancelled by someone else too (the server stopping)
                raise
        except OSError:  # how an ASGI 2.4 server tells that the client has gone, as Starlette takes it
            raise ClientDisconnect() from None
        else:
            if left:  # the stream ended by itself with the cancellation under way: it is ours to take back
                stream.uncancel()
        finally:  # no await between the stream's end and here: `leave` cannot cancel a stream that is over
            over = True
            listener.cancel()
        if left and (error := listener.exception()) is not None:
            raise error  # e.g. a body refused on the way in (limits.py): as Starlette, the response ends with it
        if self.background is not None:
            await self.background()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


sse_response = EventStream  # the name the routes know
