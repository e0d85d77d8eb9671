"""Profile our server under one load scenario with py-spy, and print where the time goes.

    .venv/bin/pip install py-spy
    .venv/bin/python bench/profile.py [stateless|threaded|stream] [--seconds 15] [--clients 32] [--svg /tmp/profile.svg] [--raw /tmp/raw.txt]

Starts our server on a fresh database (as run.py does), loads it with N clients while `py-spy record`
samples it, then prints the top self-time frames and the time per outermost agent_server frame.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

import loadgen as L
from run import CONFIG, fresh_databases, free_port, server

SCENARIOS = {
    "stateless": (L.stateless_wait, L.no_setup),
    "threaded": (L.threaded_slow, L.new_thread),
    "stream": (L.stream_echo, L.no_setup),
}


IDLE = re.compile(r"^(EpollSelector\.select|_worker \(concurrent/futures/thread)")
LOOP = re.compile(r"\((asyncio/|selectors|agent_server/cli|agent-server|<frozen runpy>)")


def short(frame: str) -> str:
    return re.sub(r"\S*/(site-packages|src|python3\.\d+)/", "", frame)


def summarize(raw: Path, top: int = 15) -> str:
    """Self time per leaf frame, and time per outermost agent_server frame (which request or task paid)."""
    total, idle, leaves, roots = 0, 0, collections.Counter(), collections.Counter()
    for line in raw.read_text().splitlines():
        stack, n = line.rsplit(" ", 1)
        frames = [short(f) for f in stack.split(";")]
        if IDLE.search(frames[-1]):
            idle += int(n)
            continue
        total += int(n)
        leaves[frames[-1]] += int(n)
        if "Thread._bootstrap" in frames[0]:
            roots["(worker threads: checkpoint serde via asyncio.to_thread)"] += int(n)
            continue
        inner = [f for f in frames if not LOOP.search(f)] or ["(event loop)"]
        ours = [f for f in inner if "(agent_server/" in f]
        roots[ours[0] if ours else inner[0]] += int(n)
    out = [f"{total} busy samples ({idle} idle ones left out: select, idle worker threads)", "", "top self time:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in leaves.most_common(top)]
    out += ["", "by outermost frame of our code (else of the task):"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in roots.most_common(top)]
    return "\n".join(out)


async def load(url: str, scenario: str, seconds: float, clients: int) -> str:
    op, setup = SCENARIOS[scenario]
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=64)) as client:
        res = await L.run_scenario(client, L.ServerProbe(None), scenario, clients, op, setup=setup, seconds=seconds)
    return L.format_row(res)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", nargs="?", default="stateless", choices=SCENARIOS)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--svg", help="also write a flame graph here")
    parser.add_argument("--raw", help="keep py-spy's raw samples here (one stack per line)")
    args = parser.parse_args()
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with fresh_databases(["profile"]) as ([db], _), tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        cmd = [str(Path(sys.executable).parent / "agent-server"), "dev", "--config", str(CONFIG), "--port", str(port)]
        with server("ours", cmd, port, {"DATABASE_URI": db}) as pid:
            raw = Path(tmp) / "profile.txt"
            duration = str(int(args.seconds))
            spy = subprocess.Popen([pyspy, "record", "--pid", str(pid), "--duration", duration, "--rate", "100",
                                    "--format", "raw", "-o", str(raw)], stdout=subprocess.DEVNULL)
            if args.svg:
                svg = subprocess.Popen([pyspy, "record", "--pid", str(pid), "--duration", duration, "-o", args.svg],
                                       stdout=subprocess.DEVNULL)
            print(L.HEADER)
            print(asyncio.run(load(f"http://127.0.0.1:{port}", args.scenario, args.seconds, args.clients)))
            spy.wait()
            if args.svg:
                svg.wait()
        print(summarize(raw))
        if args.raw:
            shutil.copy(raw, args.raw)


if __name__ == "__main__":
    main()
