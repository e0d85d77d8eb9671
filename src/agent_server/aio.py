"""asyncio helpers shared by the server's long-running loops."""
from __future__ import annotations

import asyncio


async def wait_set(event: asyncio.Event, timeout: float) -> bool:
    """Wait for `event` at most `timeout` seconds; whether it was set. asyncio.timeout, not wait_for: on
    Python 3.11 wait_for can swallow a cancellation that arrives as the wait ends (a stop would be lost)."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
        return True
    except TimeoutError:
        return False
