"""The topology of deploy/compose.yaml as processes: its `migrate`, API replicas and workers, started at once
on a fresh database (local PostgreSQL and Redis stand in for its containers), runs driven through both APIs,
the workers rolled one by one (SIGTERM, then a new one) under load, and no run lost."""
from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import yaml
from langgraph_sdk import get_client

from conftest import ServerProcess, create_database, drop_database, stop_all
from run_helpers import FINISHED, SLOW, STEPS, slow

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MAX_RUNS = 60  # the load's bound; each run is the slow graph's 5 steps of 0.2 s


def _service(services: dict, name: str, env: dict) -> ServerProcess:
    """A process running what `name` of compose.yaml runs: its command, on this machine's loopback."""
    command, *args = services[name]["command"]
    if command == "serve":
        args += ["--host", "127.0.0.1"]  # the container listens on 0.0.0.0; here, loopback only
    return ServerProcess(env=env, command=command, args=args)


async def test_the_compose_topology_started_at_once_loses_no_run_while_its_workers_roll(postgres_server, redis_uri):
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    database_uri = create_database(postgres_server)
    env = {
        "DATABASE_URI": database_uri, "REDIS_URI": redis_uri,
        "DRAIN_TIMEOUT_SECS": "0.3",  # shorter than a run: a rolled worker hands runs back mid-way
        "AGENT_SERVER_LEASE_SECS": "3",
    }
    started: list[ServerProcess] = []
    try:
        # all at once, as `docker compose up` starts them: nobody waits for the migration but the processes
        started.append(migrate := _service(services, "migrate", env))
        apis = [_service(services, "api", env) for _ in range(services["api"]["deploy"]["replicas"])]
        workers = [_service(services, "worker", env) for _ in range(services["worker"]["deploy"]["replicas"])]
        started += apis + workers
        assert len(apis) >= 2 and len(workers) >= 2
        assert await asyncio.to_thread(migrate.proc.wait, 60) == 0, migrate.output()
        for api in apis:
            await asyncio.to_thread(api.wait_ready)
        for worker in workers:
            await asyncio.to_thread(worker.wait_for_log, "running up to")
        clients = [get_client(url=api.url) for api in apis]

        async def one_run(i: int) -> tuple[str, str]:
            # a thread made on one API, its run created on the other
            thread = await clients[i % 2].threads.create()
            run = await clients[(i + 1) % 2].runs.create(thread["thread_id"], SLOW, input={}, config=slow(0.2))
            return thread["thread_id"], run["run_id"]

        rolled = asyncio.Event()

        async def load() -> list[tuple[str, str]]:  # runs keep coming until every worker has been rolled
            runs = []
            while not rolled.is_set() and len(runs) < MAX_RUNS:
                runs.append(await one_run(len(runs)))
                await asyncio.sleep(0.1)
            return runs

        feeding = asyncio.create_task(load())
        # A rolling upgrade, one worker at a time while runs keep coming, as Kubernetes rolls a Deployment of
        # pods without readiness probes (maxSurge 1): the new one started, the old one stopped and gone.
        for old in list(workers):
            await asyncio.to_thread(old.wait_for_log, "started (attempt")  # it has runs in hand
            started.append(new := _service(services, "worker", env))
            workers[workers.index(old)] = new
            old.proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(old.proc.wait, 30) == 0, old.output()
        for worker in workers:
            await asyncio.to_thread(worker.wait_for_log, "running up to")
        rolled.set()
        runs = await feeding
        assert len(runs) > 10

        async def finished(i: int, thread_id: str, run_id: str) -> dict:
            for _ in range(600):
                run = await clients[i % 2].runs.get(thread_id, run_id)
                if run["status"] in FINISHED:
                    return run
                await asyncio.sleep(0.1)
            raise AssertionError(f"run {run_id} did not finish")

        ended = await asyncio.gather(*(finished(i, t, r) for i, (t, r) in enumerate(runs)))
        assert [run["status"] for run in ended] == ["success"] * len(runs)
        states = await asyncio.gather(*(clients[0].threads.get_state(t) for t, _ in runs))
        assert all(state["values"]["steps"] == STEPS for state in states)  # each ran to its end, once
        # the rolls did hand runs over: a drained worker gave runs back, which another resumed
        assert any("handed back to the queue" in w.output() for w in started)
        assert sum("started (attempt 2)" in w.output() for w in started) >= 1

        # what the KEDA ScaledObject and the external-metric HPA read off an API, as they name it
        scaled = yaml.safe_load((DEPLOY / "kubernetes/components/keda/scaledobject.yaml").read_text())
        hpa = yaml.safe_load((DEPLOY / "kubernetes/components/worker-hpa-external-metric/hpa.yaml").read_text())
        async with httpx.AsyncClient(base_url=apis[0].url) as http:
            figures = (await http.get("/metrics", params={"format": "json"})).json()
            text = (await http.get("/metrics")).text
        for trigger in scaled["spec"]["triggers"]:
            assert figures[trigger["metadata"]["valueLocation"]] == 0  # all done: nothing pending or running
        assert f"\n{hpa['spec']['metrics'][0]['external']['metric']['name']} 0\n" in text
    finally:
        stop_all(started)
        drop_database(postgres_server, database_uri)
