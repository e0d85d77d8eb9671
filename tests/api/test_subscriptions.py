"""Run-stream subscriptions never leak and never grow without bound, with either broker.

Each test runs against a server with the in-process broker and one with Redis (`dev` with REDIS_URI: API and
queue in one process, every event through Redis pub/sub)."""
from __future__ import annotations

import asyncio
import json
import textwrap
import uuid

import httpx
import psycopg
import pytest
import redis.asyncio as aioredis

from conftest import TESTS, ServerProcess, create_database, drop_database
from run_helpers import wait_for

MAX_BEHIND = 5000  # agent_server.services.runs.MAX_BEHIND: how far a follower may fall behind
FLOOD = '''
from typing import TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.graph import START, StateGraph


class State(TypedDict, total=False):
    written: int


def flood(state: State, config: RunnableConfig) -> dict:
    """As many custom events as asked, all at once: faster than any slow client reads."""
    n, size = (int(config["configurable"][key]) for key in ("events", "size"))
    write = get_stream_writer()
    for i in range(n):
        write({"i": i, "pad": "x" * size})
    return {"written": n}


graph = StateGraph(State).add_node("flood", flood).add_edge(START, "flood").compile()
'''


class Stack:
    def __init__(self, server: ServerProcess, database_uri: str, redis_uri: str | None) -> None:
        self.server, self.url, self.database_uri, self.redis_uri = server, server.url, database_uri, redis_uri

    async def subscriptions(self) -> int:
        async with httpx.AsyncClient(base_url=self.url) as http:
            return int((await http.get("/metrics", params={"format": "json"})).json()["broker_subscriptions"])

    async def redis_subscribers(self, run_id: str) -> int:
        """Subscribers of the run's channel on the Redis server (0 without Redis)."""
        if self.redis_uri is None:
            return 0
        async with aioredis.from_url(self.redis_uri) as r:
            return (await r.pubsub_numsub(f"agent_server:run:{run_id}"))[0][1]

    async def let_go(self, baseline: int, run_id: str) -> bool:
        return await self.subscriptions() == baseline and await self.redis_subscribers(run_id) == 0


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("subscriptions")
    (folder / "flood.py").write_text(textwrap.dedent(FLOOD))
    examples = (TESTS.parent / "examples").resolve()
    graphs = {"slow": f"{examples}/graphs/slow.py:graph", "flood": f"{folder}/flood.py:graph"}
    (folder / "langgraph.json").write_text(json.dumps({"dependencies": [str(examples)], "graphs": graphs}))
    return folder / "langgraph.json"


@pytest.fixture(scope="module", params=["memory", "redis"])
def stack(request, config, postgres_server):
    db = create_database(postgres_server)
    redis_uri = request.getfixturevalue("redis_uri") if request.param == "redis" else None
    env = {"DATABASE_URI": db, **({"REDIS_URI": redis_uri} if redis_uri else {})}
    server = ServerProcess(config=config, env=env)
    try:
        yield Stack(server.wait_ready(), db, redis_uri)
    finally:
        server.stop()
        drop_database(postgres_server, db)


async def new_thread(http: httpx.AsyncClient) -> str:
    return (await http.post("/threads", json={})).json()["thread_id"]


async def only_run(http: httpx.AsyncClient, thread_id: str) -> dict:
    return await wait_for(lambda: _first_run(http, thread_id), timeout=30)


async def _first_run(http, thread_id):
    runs = (await http.get(f"/threads/{thread_id}/runs")).json()
    return runs[0] if runs else None


async def status_of(http, thread_id: str, run_id: str, statuses: set[str], timeout: float = 60) -> str:
    async def check():
        status = (await http.get(f"/threads/{thread_id}/runs/{run_id}")).json()["status"]
        return status if status in statuses else None

    return await wait_for(check, timeout, interval=0.1)


async def test_a_stream_left_before_its_first_byte_lets_go_of_its_subscription_and_cancels_the_run(stack):
    """Starlette never starts the body of a response whose client has gone: cleanup must not depend on it."""
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http:
        thread_id = await new_thread(http)
        baseline = await stack.subscriptions()
        body = {"assistant_id": "slow", "input": {}, "config": {"configurable": {"delay": 0.5}}}
        # Holding the thread's row lock keeps the server between reading the request (subscribed) and answering.
        with psycopg.connect(stack.database_uri) as db:
            db.execute("SELECT 1 FROM thread WHERE thread_id = %s FOR UPDATE", (thread_id,))
            request = asyncio.create_task(http.post(f"/threads/{thread_id}/runs/stream", json=body))
            await wait_for(lambda: _waits_on_a_lock(stack.database_uri), timeout=30)
            assert await stack.subscriptions() == baseline + 1
            request.cancel()  # the client goes: its connection closes before any byte of the answer
            await asyncio.gather(request, return_exceptions=True)
            await asyncio.sleep(0.2)  # let the server see the disconnect before it can answer
            db.rollback()
        run_id = (await only_run(http, thread_id))["run_id"]
        # The default for a non-resumable stream: the run is cancelled once its client is gone.
        assert await status_of(http, thread_id, run_id, {"success", "error", "interrupted"}) == "interrupted"
        await wait_for(lambda: stack.let_go(baseline, run_id), timeout=30)


async def _waits_on_a_lock(database_uri: str) -> bool:
    with psycopg.connect(database_uri) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return row[0] > 0


async def test_a_client_too_slow_for_its_run_has_its_stream_ended_and_resumes_without_loss(stack):
    events, size = 2 * MAX_BEHIND, 4000  # ~40 MB: socket buffers take a few MB, the rest piles up
    body = {
        "assistant_id": "flood", "input": {}, "config": {"configurable": {"events": events, "size": size}},
        "stream_mode": "custom", "stream_resumable": True,
    }
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http, \
            httpx.AsyncClient(base_url=stack.url, timeout=60) as slow:  # reads nothing until the run is over
        thread_id = await new_thread(http)
        baseline = await stack.subscriptions()
        async with slow.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as r:
            run_id = r.headers["content-location"].rsplit("/", 1)[1]
            assert await status_of(http, thread_id, run_id, {"success", "error"}, timeout=120) == "success"
            # Its backlog is gone though the client has not read it: no subscription holds it.
            await wait_for(lambda: stack.let_go(baseline, run_id), timeout=30)
            first = [part async for part in _events(r.aiter_lines())]
        # The stream ended well before the run's last event.
        seen = [i for event, _, data in first if event == "custom" for i in [json.loads(data)["i"]]]
        assert seen == list(range(len(seen))) and len(seen) < events
        # Reconnecting with Last-Event-ID gets every event after the last one this client got.
        headers = {"Last-Event-ID": first[-1][1]}
        async with http.stream("GET", f"/threads/{thread_id}/runs/{run_id}/stream", headers=headers) as rest:
            rest_seen = [json.loads(data)["i"] async for event, _, data in _events(rest.aiter_lines()) if event == "custom"]
        assert seen + rest_seen == list(range(events))
    assert "fell 5000 messages behind" in stack.server.output()


async def _events(lines):
    """(event, id, data) of an SSE body."""
    event = event_id = data = None
    async for line in lines:
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("id: "):
            event_id = line[len("id: "):]
        elif line.startswith("data: "):
            data = line[len("data: "):]
        elif not line and event is not None:
            yield event, event_id, data
            event = event_id = data = None


@pytest.mark.parametrize("stateless", [False, True], ids=["thread", "stateless"])
async def test_a_waiter_that_disconnects_cancels_its_run_only_if_it_asked_to(stack, stateless):
    async def wait(on_disconnect: str | None) -> str:
        """Wait for a slow run with a client that gives up after a moment; the run's status in the end."""
        marker = str(uuid.uuid4())
        body = {"assistant_id": "slow", "input": {}, "config": {"configurable": {"delay": 0.5}},
                "metadata": {"marker": marker}, "on_completion": "keep",
                **({"on_disconnect": on_disconnect} if on_disconnect else {})}
        path = "/runs/wait" if stateless else f"/threads/{await new_thread(http)}/runs/wait"
        with pytest.raises(httpx.ReadTimeout):
            await impatient.post(path, json=body)
        return await wait_for(lambda: _finished_status(stack.database_uri, marker), timeout=60, interval=0.1)

    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http, \
            httpx.AsyncClient(base_url=stack.url, timeout=httpx.Timeout(30, read=0.5)) as impatient:
        statuses = await asyncio.gather(wait("cancel"), wait("continue"), wait(None))
    assert statuses == ["interrupted", "success", "success"]


async def _finished_status(database_uri: str, marker: str) -> str | None:
    with psycopg.connect(database_uri) as conn:
        row = conn.execute(
            "SELECT status FROM run WHERE metadata->>'marker' = %s AND status IN ('success', 'error', 'interrupted')",
            (marker,),
        ).fetchone()
    return row[0] if row else None
