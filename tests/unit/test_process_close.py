"""A server process's last step (cli._close: the pool, the broker, the embedded database) is bounded: a close stuck
on its way out (a connection that never answers) is left after CLOSE_SECONDS, said in the log, and the process
exits instead of hanging a deploy."""
from __future__ import annotations

import asyncio
import logging
import time

from agent_server import cli


class _Runtime:
    """What _close needs of a runtime: a close() that takes `seconds`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def close(self) -> None:
        await asyncio.sleep(self.seconds)


async def test_a_close_that_hangs_is_left_after_the_bound_and_said_in_the_log(monkeypatch, caplog):
    monkeypatch.setattr(cli, "CLOSE_SECONDS", 0.3)
    caplog.set_level(logging.INFO, logger="agent_server")
    started = time.monotonic()
    await cli._close(_Runtime(3600))
    assert time.monotonic() - started < 5
    assert "took over 0s; exiting without waiting further" in caplog.text


async def test_a_close_within_the_bound_is_said_done(monkeypatch, caplog):
    monkeypatch.setattr(cli, "CLOSE_SECONDS", 5)
    caplog.set_level(logging.INFO, logger="agent_server")
    await cli._close(_Runtime(0.01))
    assert "closed" in caplog.text and "exiting without" not in caplog.text
