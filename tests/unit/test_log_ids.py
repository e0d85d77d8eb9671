"""Log lines carry the ids of their context, in the tasks it creates too; request ids are the client's when sane."""
from __future__ import annotations

import asyncio
import io
import json
import logging

from agent_server.observability import JSONFormatter, _IdsFilter, _request_id, log_ids


def _logger() -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(_IdsFilter())
    handler.setFormatter(JSONFormatter())
    logger = logging.getLogger("test_log_ids")
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.INFO
    return logger, out


async def test_lines_in_a_block_and_its_tasks_carry_its_ids():
    logger, out = _logger()

    async def in_task():
        await asyncio.sleep(0)
        logger.info("inside a task")

    with log_ids(run_id="r1", thread_id="t1", assistant_id=None):
        task = asyncio.create_task(in_task())  # copies the context as it is now
        logger.info("inside")
    await task
    logger.info("outside")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(l["message"], l.get("run_id"), l.get("thread_id")) for l in lines] == [
        ("inside", "r1", "t1"), ("inside a task", "r1", "t1"), ("outside", None, None),
    ]
    assert "assistant_id" not in lines[0]  # no id, no key


def test_request_id_is_the_clients_when_sane():
    assert _request_id([(b"x-request-id", b"abc-123.4")]) == "abc-123.4"
    for bad in (b"has space", b"x" * 200, b"\xff\xfe", b""):
        generated = _request_id([(b"x-request-id", bad)])
        assert len(generated) == 32 and generated != bad.decode("latin-1")
    assert _request_id([]) != _request_id([])
