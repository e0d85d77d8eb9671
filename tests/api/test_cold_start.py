"""Cold start: processes started together on an empty database, and workers started before their database."""
from __future__ import annotations

import asyncio
import signal
import time
import uuid

import psycopg
import pytest
from langgraph_sdk import get_client

from conftest import ServerProcess, create_database, drop_database, free_port, stop_all

READY_TIMEOUT = 120  # generous: three processes import, connect and migrate at once on a loaded machine


@pytest.mark.parametrize("attempt", range(3))  # a race: try it on more than one fresh database
async def test_an_api_and_two_workers_started_at_once_on_an_empty_database_all_come_up(
    postgres_server, redis_uri, attempt
):
    db = create_database(postgres_server)
    env = {"DATABASE_URI": db, "REDIS_URI": redis_uri}
    procs = [
        ServerProcess(env=env, command="serve", args=["--no-queue", "--host", "127.0.0.1"]),
        ServerProcess(env=env, command="worker"),
        ServerProcess(env=env, command="worker"),
    ]
    api, *workers = procs
    try:
        await asyncio.to_thread(api.wait_ready, READY_TIMEOUT)
        for worker in workers:
            await asyncio.to_thread(worker.wait_for_log, "running up to", READY_TIMEOUT)
        assert sum("applying migration 0001" in p.output() for p in procs) == 1  # one migrated; the others waited

        client = get_client(url=api.url)
        thread = await client.threads.create()
        run = await client.runs.create(
            thread["thread_id"], "echo", input={"messages": [{"role": "user", "content": "hi"}]}
        )
        await asyncio.wait_for(client.runs.join(thread["thread_id"], run["run_id"]), 60)
        assert (await client.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"
    finally:
        stop_all(procs)
        drop_database(postgres_server, db)


async def test_a_worker_started_before_its_database_exists_retries_then_comes_up(postgres_server, redis_uri):
    name = f"agent_server_test_{uuid.uuid4().hex[:12]}"
    db = psycopg.conninfo.make_conninfo(postgres_server, dbname=name)
    worker = ServerProcess(env={"DATABASE_URI": db, "REDIS_URI": redis_uri}, command="worker")
    try:
        await asyncio.to_thread(worker.wait_for_log, "retrying in", 60)
        assert name in worker.output()  # says what failed: the database it cannot reach
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        await asyncio.to_thread(worker.wait_for_log, "running up to", READY_TIMEOUT)
    finally:
        worker.stop()
        drop_database(postgres_server, db)


async def test_a_worker_whose_database_does_not_answer_keeps_retrying_and_exits_cleanly_on_sigterm(redis_uri):
    db = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    worker = ServerProcess(env={"DATABASE_URI": db, "REDIS_URI": redis_uri}, command="worker")
    try:
        await asyncio.to_thread(worker.wait_for_log, "retrying in", 60)
        deadline = time.monotonic() + 60
        while worker.output().count("retrying in") < 2:  # still alive and retrying after the first failure
            assert worker.proc.poll() is None and time.monotonic() < deadline, worker.output()
            await asyncio.sleep(0.2)
        worker.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.proc.wait, 30) == 0
    finally:
        worker.stop()


async def test_a_worker_whose_redis_does_not_answer_says_so_and_retries(database_uri):
    worker = ServerProcess(
        env={"DATABASE_URI": database_uri, "REDIS_URI": f"redis://127.0.0.1:{free_port()}/0"}, command="worker"
    )
    try:
        await asyncio.to_thread(worker.wait_for_log, "retrying in", 60)
        assert "cannot connect to Redis" in worker.output() and worker.proc.poll() is None
        assert worker.stop() == 0  # SIGTERM during the retry wait: a clean exit
    finally:
        worker.stop()
