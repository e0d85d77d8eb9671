"""The floor: the echo graph invoked in-process with AsyncPostgresSaver on PostgreSQL, no HTTP.

    python bench/floor.py --dsn postgresql://postgres@127.0.0.1:5432/DB [--json out.json] [--quick]

Each invocation is a fresh thread, as a stateless run is. Measured with durability "async" and "exit",
and (for reference) without a checkpointer, at 1 and 32 concurrent invocations.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from loadgen import HEADER, ServerProbe, check_echo, echo_input, format_row, run_scenario, tag

GRAPHS = Path(__file__).resolve().parent.parent / "examples" / "graphs"
ECHO = GRAPHS / "echo.py"


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
        saver = AsyncPostgresSaver(pool)
        await saver.setup()
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(HEADER)
    data = asyncio.run(run_floor(args.dsn, args.quick))
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
