"""Render bench/results.json as bench/RESULTS.md:  python bench/report.py [results.json]"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

Row = dict[str, Any]


def _f(v: float | None, spec: str = ".1f") -> str:
    return "–" if v is None else format(v, spec)


def _ratio(a: float | None, b: float | None) -> str:
    return "–" if not a or not b else f"{a / b:.2f}×"


def find(rows: list[Row], prefix: str, conc: int) -> Row | None:
    return next((r for r in rows if r["name"].startswith(prefix) and r["concurrency"] == conc), None)


def server_table(rows: list[Row]) -> str:
    out = [
        "| scenario | clients | ok | errors | rate | p50 ms | p95 ms | p99 ms | extra p50 ms | server CPU % | CPU ms/op | peak RSS MB |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|",
    ]
    for r in rows:
        extra = ", ".join(f"{k} {_f(v)}" for k, v in r["extra_p50_ms"].items())
        errors = f"**{r['errors']}** ✗" if r["errors"] else "0"
        out.append(
            f"| {r['name']} | {r['concurrency']} | {r['ok']} | {errors} | {r['rate']:.1f} {r['unit']} | "
            f"{_f(r['p50_ms'])} | {_f(r['p95_ms'])} | {_f(r['p99_ms'])} | {extra} | {_f(r['cpu_pct'])} | "
            f"{_f(r['cpu_ms_per_op'], '.2f')} | {_f(r.get('peak_rss_mb'))} |"
        )
    samples = [f"- {r['name']} ({r['concurrency']} clients): `{s}`" for r in rows if r["errors"] for s in r["error_samples"]]
    return "\n".join(out + (["", "Errors (samples):", *samples] if samples else []))


def comparison(ours: list[Row], official: list[Row], floor_rows: list[Row]) -> str:
    out = [
        "| scenario | clients | ours rate | official rate | ours/official | ours p50 ms | official p50 ms "
        "| ours/floor (async) | ours CPU ms/op | official CPU ms/op |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in ours:
        o = find(official, r["name"], r["concurrency"]) or {}
        floor = find(floor_rows, "floor echo, async", r["concurrency"]) if r["name"].startswith("stateless runs/wait") else None
        mark = lambda row: " ✗" if row and row.get("errors") else ""  # noqa: E731
        out.append(
            f"| {r['name']} | {r['concurrency']} | {r['rate']:.1f}{mark(r)} | {_f(o.get('rate'))}{mark(o)} | "
            f"{_ratio(r['rate'], o.get('rate'))} | {_f(r['p50_ms'])} | {_f(o.get('p50_ms'))} | "
            f"{_ratio(r['rate'], floor['rate']) if floor else ''} | {_f(r['cpu_ms_per_op'], '.2f')} | "
            f"{_f(o.get('cpu_ms_per_op'), '.2f')} |"
        )
    return "\n".join(out)


def targets(data: dict) -> str:
    ours, official, floor_rows = data["ours"]["results"], data["official"]["results"], data["floor"]["results"]
    s1, s32 = find(ours, "stateless runs/wait", 1) or {}, find(ours, "stateless runs/wait", 32) or {}
    o32 = find(official, "stateless runs/wait", 32) or {}
    t32, ot32 = find(ours, "threaded", 32) or {}, find(official, "threaded", 32) or {}
    st1 = find(ours, "stateless runs/stream", 1) or {}
    f32 = find(floor_rows, "floor echo, async", 32) or {}
    ttfe = (st1.get("extra_p50_ms") or {}).get("first_event")
    rss = data["ours"].get("peak_rss_mb")
    rows = [
        ("stateless echo, 1 client, p50", "≤ 15 ms", f"{_f(s1.get('p50_ms'))} ms", s1.get("p50_ms") is not None and s1["p50_ms"] <= 15),
        ("time to first SSE event, p50", "≤ 10 ms", f"{_f(ttfe)} ms", ttfe is not None and ttfe <= 10),
        ("stateless runs/s, 32 clients vs official", "≥ 3×", _ratio(s32.get("rate"), o32.get("rate")),
         bool(o32.get("rate")) and s32.get("rate", 0) >= 3 * o32["rate"]),
        ("stateless runs/s, 32 clients vs floor (async)", "≥ 0.70×", _ratio(s32.get("rate"), f32.get("rate")),
         bool(f32.get("rate")) and s32.get("rate", 0) >= 0.7 * f32["rate"]),
        ("threaded 5-step runs/s, 32 clients vs official", "≥ 3×", _ratio(t32.get("rate"), ot32.get("rate")),
         bool(ot32.get("rate")) and t32.get("rate", 0) >= 3 * ot32["rate"]),
        ("server peak RSS", "≤ 250 MB", f"{_f(rss)} MB", rss is not None and rss <= 250),
        ("every response correct", "0 errors", f"{sum(r['errors'] for r in ours)} errors", not any(r["errors"] for r in ours)),
    ]
    out = ["| target | goal | ours | met |", "|---|---|--:|:-:|"]
    out += [f"| {name} | {goal} | {value} | {'✓' if met else '✗'} |" for name, goal, value, met in rows]
    return "\n".join(out)


def render(data: dict) -> str:
    m = data["meta"]
    ours, official, floor = data["ours"], data["official"], data["floor"]
    return f"""# Benchmark results

Produced by `{m['command']}` (from the repository root, with the project venv: `.venv/bin/python {m['command']}`)
on {m['date']}, commit `{m['commit']}`{' (with uncommitted changes under src/)' if m.get('dirty_src') else ''}, {m['machine']},
load average {m['load_average_at_start']} at start, {m['database']}; {m['seconds']} s in all.

Each scenario: 1 s warm-up, then a fixed time window (see bench/loadgen.py); a rate counts only responses
that passed their correctness check (echo output `echo: <input>`, 5 steps more on the thread, SSE ends with
the echo, join returns the run's output, CRUD round-trips its fields). The servers ran one at a time on the
same machine as the load generator; "server CPU %" is the server process tree (PostgreSQL excluded; 100 % = one
core). Ours keeps everything in PostgreSQL; the official `langgraph dev` server is in-memory. When the machine is
shared (load average above the core count), rates and latencies mostly measure contention: compare CPU ms/op.

## Targets (ours)

{targets(data)}

## Ours vs official vs floor

{comparison(ours['results'], official['results'], floor['results'])}

## Ours (idle: CPU {_f(ours.get('idle_cpu_pct'))} %, RSS {_f(ours.get('idle_rss_mb'))} MB; peak RSS {_f(ours.get('peak_rss_mb'))} MB)

{server_table(ours['results'])}

## Official `langgraph dev` (idle: CPU {_f(official.get('idle_cpu_pct'))} %, RSS {_f(official.get('idle_rss_mb'))} MB; peak RSS {_f(official.get('peak_rss_mb'))} MB)

{server_table(official['results'])}

## Floor: echo graph in-process with AsyncPostgresSaver, no HTTP

Each invocation on a fresh thread; CPU is the benchmark process itself. AsyncPostgresSaver runs every query
under one `asyncio.Lock` per saver (even on a pool), so with a checkpointer the floor is bounded by PostgreSQL
round trips and commits one at a time, not by CPU: it barely scales with concurrency. Our stateless runs use no
checkpointer (as the official server's), so "no checkpointer" is their true floor.

{server_table(floor['results'])}
"""


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results.json")
    sys.stdout.write(render(json.loads(path.read_text())))
