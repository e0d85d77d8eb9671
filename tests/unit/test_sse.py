"""The SSE response in-process: its cleanup runs whether or not its body ever starts."""
from __future__ import annotations

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
