"""Many concurrent state updates on one thread: each is applied or refused (429), none fails, and the
rest of the server stays responsive (waiters hold no database connection)."""
from __future__ import annotations

import asyncio
import time

import httpx

UPDATES = 60  # more than the server's pool has connections


async def test_concurrent_state_updates_on_one_thread_neither_fail_nor_starve_other_requests(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
        thread_id = (await http.post("/threads", json={"metadata": {"graph_id": "echo"}})).json()["thread_id"]
        other_id = (await http.post("/threads", json={})).json()["thread_id"]

        async def update(i: int) -> tuple[str, httpx.Response]:
            message = {"type": "human", "content": f"m{i}", "id": f"m{i}"}
            return f"m{i}", await http.post(
                f"/threads/{thread_id}/state", json={"values": {"messages": [message]}, "as_node": "echo"}
            )

        updates = asyncio.gather(*(update(i) for i in range(UPDATES)))
        read_times = []
        while not updates.done():  # an unrelated read, again and again while the updates go on
            started = time.monotonic()
            read = await http.get(f"/threads/{other_id}")
            read_times.append(time.monotonic() - started)
            assert read.status_code == 200, read.text
            assert read_times[-1] < 5, f"an unrelated read waited {read_times[-1]:.1f}s"
        results = await updates

        statuses = [r.status_code for _, r in results]
        assert set(statuses) <= {200, 429}, [(r.status_code, r.text) for _, r in results if r.status_code not in (200, 429)]
        assert 200 in statuses
        for _, r in results:
            if r.status_code == 429:
                assert "retry" in r.json()["detail"] and r.headers["Retry-After"]
        applied = {message_id for message_id, r in results if r.status_code == 200}
        state = (await http.get(f"/threads/{thread_id}/state")).json()
        assert {m["id"] for m in state["values"]["messages"]} == applied
