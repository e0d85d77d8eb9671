"""bench/ still runs (a short smoke, no timings asserted): the agent-shaped conversations and the many-streams
scenario against our server, and the conversations' in-process floor, every run checked by the bench itself
(tokens complete and in order, the history intact), and the report renders their figures."""
from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest

from conftest import ServerProcess, fresh_database, running

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import agent_bench  # noqa: E402
import floor  # noqa: E402
import report  # noqa: E402

FAST = {"tokens": 5, "token_gap": 0.002, "turns": 3}


@pytest.fixture
def agent_server(database_uri):
    yield from running(ServerProcess(BENCH / "agent" / "langgraph.json", env={"DATABASE_URI": database_uri, "N_JOBS_PER_WORKER": "20"}))


async def test_the_agent_conversations_run_and_every_run_is_correct(agent_server):
    data = await agent_bench.conversations(agent_server.url, agent_server.proc.pid, (2,), settings=FAST,
                                           log=lambda _: None, window=(1.5, 0.5))
    row = data["results"][0]
    assert row["errors"] == 0, row["error_samples"]
    assert row["ok"] > 0 and row["tokens"] >= row["ok"] * 15
    assert row["first_token_p50_ms"] is not None and row["token_delay_p99_ms"] is not None
    assert "| ours (external PostgreSQL) | 2 |" in report.agent_section({"agent": {"ours": data}})


@pytest.fixture
def floor_database(postgres_server):
    yield from fresh_database(postgres_server)


@pytest.fixture
def gc_restored():
    """The floor settles the collector as a server process does (frozen, high thresholds): not this one's for good."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


async def test_the_agent_floor_checks_every_run(floor_database, gc_restored):
    data = await floor.run_agent_floor(floor_database, clients=(2,), settings=FAST, window=(1.5, 0.5), log=lambda _: None)
    row = data["results"][0]
    assert row["errors"] == 0, row["error_samples"]
    assert row["ok"] > 0 and row["tokens"] >= row["ok"] * 15
    assert row["first_token_p50_ms"] is not None and row["cpu_ms_per_op"] is not None and data["peak_rss_mb"]
    assert "| floor (in-process, our saver, no server) | 2 |" in report.agent_section({"agent": {"floor": data}})


async def test_many_streams_deliver_every_token_to_every_follower(agent_server):
    out = await agent_bench.many_streams(agent_server.url, agent_server.proc.pid, runs=5, joiners=3, tokens=5,
                                         token_gap=0.01, start_delay=2.0, settle=0.2,
                                         log=lambda _: None)
    assert out["errors"] == 0, out["error_samples"]
    # every client connected before the first token, so each token of each is a live one
    assert out["complete"] == 15 and out["late_clients"] == 0 and out["events"] == 15 * 5
    assert out["idle_rss_mb"] and out["peak_rss_mb"] and out["after_rss_mb"]
    assert "15 of 15 got every token in order" in report.streams_section({"streams": {**out, "jobs": 20}})


def test_the_report_renders_the_deployment_modes():
    delay = {"p50_ms": 1.0, "p95_ms": 2.5, "max_ms": 4.0}
    modes = {mode: {"runs_per_s": 10.0, "stream_delay_burn": delay, "stream_delay_block": delay}
             for mode in ("single host", "split", "distributed")}
    settings = {"clients": 16, "seconds": 4.0, "hogs": 2, "hog_step_s": 1.0, "step_ms": 50.0, "light_runs": 3, "executors": 2}
    section = report.modes_section({"modes": modes, "settings": settings})
    assert "| distributed | 10.0 | 1.0 / 2.5 / 4.0 | 1.0 / 2.5 / 4.0 |" in section
    assert report.modes_section({}) == "(not run)"


def test_a_partial_run_names_the_parts_it_knows():
    """`bench/run.py --only` (a side-by-side measurement of some parts) refuses a part it does not have, listing
    those it has, before it touches a database."""
    import subprocess

    out = subprocess.run([sys.executable, str(BENCH / "run.py"), "--only", "streams,nope"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "unknown part(s) nope: choose from ours, official, floor, split, chaos, bodies, agent, streams" in out.stderr


def test_the_streams_targets_take_the_median_wave_and_count_every_wave():
    def wave(p99: float, after: float, errors: int = 0) -> dict:
        return {"complete": 1000 - errors, "errors": errors, "delay_p50_ms": 3.0, "delay_p99_ms": p99,
                "idle_rss_mb": 100.0, "peak_rss_mb": 180.0 + p99 / 10, "after_rss_mb": after}

    waves = [wave(80.0, 150.0), wave(30.0, 105.0, errors=2), wave(45.0, 112.0)]
    streams = {**waves[2], "clients": 1000, "waves": waves}
    rows = {name: (figure, met) for name, _, figure, met in
            report.agent_targets({"floor": {"results": []}, "streams": streams})}
    p99 = rows["1,000 open streams: publish → client, p99 (the median of 3 fresh processes)"]
    assert p99 == ("45.0 ms (each: 80.0, 30.0, 45.0)", True)
    assert rows["open streams: RSS back to idle after they disconnect (the median of 3 fresh processes)"] == (
        "+12.0 MB (each: +50.0, +5.0, +12.0)", False)
    assert rows["1,000 open streams: every event delivered in order"] == ("2,998 of 3,000 complete", False)
    assert rows["1,000 open streams: API process RSS"] == ("188.0 MB", True)
