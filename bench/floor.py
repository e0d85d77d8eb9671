"""The floor: the echo graph invoked in-process with AsyncPostgresSaver on PostgreSQL, no HTTP.

    python bench/floor.py --dsn postgresql://postgres@127.0.0.1:5432/DB [--json out.json] [--quick]
    python bench/floor.py --agent --dsn ... [--clients 1,16,100] [--json out.json] [--quick]

Each invocation is a fresh thread, as a stateless run is. Measured with durability "async" and "exit",
and (for reference) without a checkpointer, at 1 and 32 concurrent invocations.

With --agent: the agent-shaped conversations of bench/agent_bench.py with no server (no HTTP, no queue), on our
saver, checked and measured as agent_bench checks and measures a server's; on our server's event loop, with the
garbage collector settled as our server settles it.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

import agent_bench as A
from agent_server.storage.database import migrate
from loadgen import HEADER, ServerProbe, check_echo, echo_input, format_row, run_scenario, tag

GRAPHS = Path(__file__).resolve().parent.parent / "examples" / "graphs"
ECHO = GRAPHS / "echo.py"
AGENT = Path(__file__).resolve().parent / "agent" / "agent.py"


def load_graph(path: Path = ECHO) -> Any:
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.graph


def load_echo_graph() -> Any:
    return load_graph(ECHO)


async def run_floor(dsn: str, quick: bool = False, log=print) -> dict:
    pool = AsyncConnectionPool(
        dsn, min_size=2, max_size=20, open=False,
        kwargs={"autocommit": True, "prepare_threshold": None, "row_factory": dict_row},
    )
    await pool.open(wait=True)
    try:
        await migrate(pool)  # the server's tables, as the server migrates them (the values' compression too)
        saver = AsyncPostgresSaver(pool)
        builder = load_echo_graph().builder
        graphs = {"async": builder.compile(checkpointer=saver), "exit": builder.compile(checkpointer=saver),
                  "no checkpointer": builder.compile()}
        probe = ServerProbe(os.getpid())  # our own CPU: the cost of a run without a server around it
        results = []
        for mode, graph in graphs.items():
            options = {} if mode == "no checkpointer" else {"durability": mode}

            async def invoke(_client: Any, _state: dict, graph=graph, options=options) -> None:
                text = tag()
                config = {"configurable": {"thread_id": str(uuid.uuid4())}}
                check_echo(await graph.ainvoke(echo_input(text), config, **options), text)

            for conc in (1, 32):
                res = await run_scenario(
                    None, probe, f"floor echo, {mode}", conc, invoke,  # type: ignore[arg-type]
                    seconds=2.0 if quick else 4.0, warmup=0.5,
                )
                res.peak_rss_mb = None
                log(format_row(res))
                results.append(asdict(res))
        results += await _five_step_floor(pool, saver, probe, quick, log)
        return {"dsn_db": dsn.rsplit("/", 1)[-1], "results": results}
    finally:
        await pool.close()


async def _five_step_floor(pool, saver, probe, quick: bool, log) -> list[dict]:
    """The threaded scenario's graph (5 steps, each checkpointed): the stock saver, and ours (the one our server
    runs on: same tables, no lock, one statement per checkpoint and per task's writes)."""
    from agent_server.storage.checkpointer import PooledPostgresSaver

    builder = load_graph(GRAPHS / "slow.py").builder
    savers = {"floor slow 5-step, async": saver, "floor slow 5-step, async, our saver": PooledPostgresSaver(pool)}
    results = []
    for name, checkpointer in savers.items():
        graph = builder.compile(checkpointer=checkpointer)

        async def invoke(_client: Any, _state: dict, graph=graph) -> None:
            config = {"configurable": {"thread_id": str(uuid.uuid4()), "delay": 0}}
            out = await graph.ainvoke({}, config, durability="async")
            if out.get("steps") != [f"step{i}" for i in range(1, 6)]:
                raise AssertionError(f"wrong steps: {out}")

        for conc in (1, 32):
            res = await run_scenario(None, probe, name, conc, invoke, seconds=2.0 if quick else 4.0, warmup=0.5)  # type: ignore[arg-type]
            res.peak_rss_mb = None
            log(format_row(res))
            results.append(asdict(res))
    return results


class OwnProbe(ServerProbe):
    """This process's CPU and RSS, without ServerProbe's search for child processes (a scan of /proc each sample,
    which the floor would be charged for)."""

    def procs(self) -> list:
        return [self.root]


async def run_agent_floor(dsn: str, quick: bool = False, clients: tuple[int, ...] = (1, 16, 100),
                          settings: dict | None = None, window: tuple[float, float] | None = None, log=print) -> dict:
    """Each user's turns on a thread of its own, streamed with graph.astream (messages and updates) on our saver,
    every event serialized as our server serializes it and fed to agent_bench's checks as it is ready to send.
    Rows and figures as agent_bench.conversations gives them for a server; CPU and RSS are this process's."""
    from agent_server.cli import settle_gc
    from agent_server.serde import dumps
    from agent_server.storage.checkpointer import PooledPostgresSaver

    settings = {**A.AGENT, **(settings or {})}
    pool = AsyncConnectionPool(
        dsn, min_size=2, max_size=20, open=False,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    )
    await pool.open(wait=True)
    try:
        await migrate(pool)  # the server's tables, as the server migrates them (the values' compression too)
        saver = PooledPostgresSaver(pool)
        graph = load_graph(AGENT).builder.compile(checkpointer=saver)

        async def new_thread(_client: Any) -> dict:
            return {"thread_id": str(uuid.uuid4()), "messages": 0, "settings": settings}

        async def turn(_client: Any, state: dict, sink: dict[str, list[float]]) -> dict[str, float]:
            run = A.TurnCheck(state)
            config = {"configurable": {"thread_id": state["thread_id"], **settings}}
            t0 = time.time()
            async for mode, chunk in graph.astream(A.user_message(), config, stream_mode=["messages", "updates"],
                                                   durability="async"):
                run.feed(mode, dumps(chunk), time.time())
            return run.finish(t0, sink)

        # Everything loaded: the collector as our server sets it once started (frozen, rarer young collections),
        # else the floor would pay collections the server does not.
        settle_gc()
        probe = OwnProbe(os.getpid())
        idle_rss = probe.rss()
        probe.start()
        results = []
        for n in clients:
            results.append(await A.measure_conversations(None, probe, "agent conversations, floor", n, turn, new_thread,
                                                         *A.window_for(n, quick, window), log))
        await probe.stop()
        loop = type(asyncio.get_running_loop()).__module__.split(".")[0]  # uvloop, or asyncio
        return {"settings": settings, "event_loop": loop, "idle_rss_mb": round(idle_rss / 2**20, 1),
                "peak_rss_mb": round(probe.peak_rss / 2**20, 1), "results": results}
    finally:
        await pool.close()


def run_as_server(coro: Any) -> Any:
    """On uvloop when it is installed, as our server runs (agent_server.cli): the tokens' pacing and the loop's
    cost are the server's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--agent", action="store_true", help="the agent-shaped conversations instead")
    parser.add_argument("--clients", default="1,16,100", help="with --agent: concurrent conversations, comma-separated")
    args = parser.parse_args()
    print(HEADER)
    if args.agent:
        clients = tuple(int(c) for c in args.clients.split(","))
        data = run_as_server(run_agent_floor(args.dsn, args.quick, clients))
    else:
        data = asyncio.run(run_floor(args.dsn, args.quick))
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
