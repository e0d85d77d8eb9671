"""The three deployment modes side by side: single host (`dev`: API and queue in one process), split mode
(`serve --no-queue` + `worker`) and distributed mode (`serve --no-queue` + `worker --executors 2`: an orchestrator
and 2 executor processes).

    .venv/bin/python bench/modes.py [--quick] [--json out.json]    (bench/run.py runs it too: `modes`)

For each mode: runs/s of light stateless runs (the slow graph with no delay, /runs/wait, 16 clients), then the
case distributed mode exists for: the stream delay of light runs (5 steps of 50 ms, streamed one after another)
while 2 other runs execute graph code that blocks its event loop: CPU-bound (`burn`) or blocking (`block`,
time.sleep), 1 s per step. Delay = each gap between two events of a light run minus the step's 50 ms.
Needs PostgreSQL (BENCH_PG_URI) and Redis (BENCH_REDIS_URI), as bench/run.py.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx

from loadgen import STEPS, pct
from run import AGENT_SERVER, CONFIG, REDIS, fresh_databases, free_port, log, server

LIGHT = {"configurable": {"delay": 0}}
STEP = 0.05
MODES = ["single host", "split", "distributed"]
CLIENTS, HOGS, HOG_STEP = 16, 2, 1.0


async def runs_per_second(url: str, seconds: float, clients: int = CLIENTS) -> float:
    done, deadline = 0, time.monotonic() + seconds
    body = {"assistant_id": "slow", "input": {}, "config": LIGHT}

    async def client_loop(http: httpx.AsyncClient) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            out = (await http.post("/runs/wait", json=body)).json()
            if out.get("steps") == STEPS and time.monotonic() <= deadline:
                done += 1

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=clients)) as http:
        await http.post("/runs/wait", json=body)  # warm up
        began = time.monotonic()
        await asyncio.gather(*(client_loop(http) for _ in range(clients)))
    return round(done / (time.monotonic() - began), 1)


async def stream_delays(url: str, hog: dict, light_runs: int) -> dict:
    """Delays (ms) of light runs' events while 2 hog runs execute."""
    delays = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        hogs = []
        for _ in range(HOGS):
            thread = (await http.post("/threads", json={})).json()["thread_id"]
            config = {"configurable": {"delay": HOG_STEP, **hog}}
            run = (await http.post(f"/threads/{thread}/runs", json={"assistant_id": "slow", "input": {}, "config": config})).json()
            hogs.append((thread, run["run_id"]))
        await asyncio.sleep(0.5)  # the hogs are in their first step
        body = {"assistant_id": "slow", "input": {}, "stream_mode": "updates", "config": {"configurable": {"delay": STEP}}}
        for _ in range(light_runs):
            arrivals = []
            async with http.stream("POST", "/runs/stream", json=body) as r:
                async for line in r.aiter_lines():
                    if line.startswith("event: updates"):
                        arrivals.append(time.monotonic())
            delays += [max(0.0, b - a - STEP) * 1000 for a, b in zip(arrivals, arrivals[1:])]
        for thread, run_id in hogs:
            await http.post(f"/threads/{thread}/runs/{run_id}/cancel", params={"wait": "true"})
    return {"p50_ms": round(pct(delays, 0.5), 1), "p95_ms": round(pct(delays, 0.95), 1), "max_ms": round(max(delays), 1)}


def sizes(quick: bool) -> tuple[float, int]:
    """Seconds of the runs/s measurement, light runs streamed beside each kind of hog."""
    return (4.0, 3) if quick else (12.0, 10)


def bench_mode(name: str, dsn: str, quick: bool) -> dict:
    env = {"DATABASE_URI": dsn, "REDIS_URI": REDIS, "N_JOBS_PER_WORKER": None}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = [AGENT_SERVER, "serve", "--config", str(CONFIG), "--host", "127.0.0.1", "--port", str(port)]
    worker = [AGENT_SERVER, "worker", "--config", str(CONFIG)]
    seconds, light_runs = sizes(quick)
    with server(f"{name} API", api if name == "single host" else [*api, "--no-queue"], port, env):
        if name == "split":
            ctx = server("worker", worker, None, env, ready_line="running up to")
        elif name == "distributed":
            ctx = server("orchestrator + 2 executors", [*worker, "--executors", "2"], None, env, ready_line="up with")
        else:
            ctx = None
        if ctx is not None:
            ctx.__enter__()
        try:
            if name == "distributed":
                time.sleep(2)  # both executors up
            result = {"runs_per_s": asyncio.run(runs_per_second(url, seconds))}
            for hog in ({"burn": 1}, {"block": 1}):
                result[f"stream_delay_{next(iter(hog))}"] = asyncio.run(stream_delays(url, hog, light_runs))
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)
    log(f"{name:12} {result['runs_per_s']:>8} runs/s   light-run stream delay (ms) beside CPU-bound runs "
        f"{result['stream_delay_burn']}, beside blocking runs {result['stream_delay_block']}")
    return result


def bench_modes(dsns: list[str], quick: bool) -> dict:
    """Every mode, each on its database of `dsns`; the figures and how they were measured (bench/run.py's `modes`)."""
    seconds, light_runs = sizes(quick)
    return {
        "modes": {mode: bench_mode(mode, dsn, quick) for mode, dsn in zip(MODES, dsns)},
        "settings": {"clients": CLIENTS, "seconds": seconds, "hogs": HOGS, "hog_step_s": HOG_STEP,
                     "step_ms": STEP * 1000, "light_runs": light_runs, "executors": 2},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    with fresh_databases(["single", "split", "distributed"]) as (dbs, note):
        log(f"database: {note}")
        results = bench_modes(dbs, args.quick)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
