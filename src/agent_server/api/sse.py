"""Server-sent events: the framing of the official server, heartbeats on idle streams."""
from __future__ import annotations

from typing import AsyncIterator

from fastapi.responses import StreamingResponse

HEARTBEAT = b": heartbeat\n\n"


def frame(event: str, data: bytes, event_id: str = "") -> bytes:
    out = b"event: " + event.encode() + b"\ndata: " + data + b"\n"
    return out + (b"id: " + event_id.encode() + b"\n\n" if event_id else b"\n")


def sse_response(events: AsyncIterator[tuple[str, bytes, str]], headers: dict[str, str] | None = None) -> StreamingResponse:
    async def body():
        async for event, data, event_id in events:
            yield frame(event, data, event_id) if event else HEARTBEAT

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no", **(headers or {})},
    )
