"""Agent-shaped load (bench/agent/agent.py) and many open streams, against a running server.

    python bench/agent_bench.py --url http://127.0.0.1:PORT [--pid PID] [--quick] [--streams-only | --no-streams]

Conversations: each of N users has a thread and sends the next message when the previous run ends, streaming it
(`messages-tuple` and `updates`). Every run is checked: each model turn's tokens arrive complete and in order,
the tool calls and tool answers are there, and the tool saw the whole history of the thread (6 more messages
per run: the history is read back from the checkpoints). Reported: time to first token, the delay the server
added to each token (receive time minus the time the graph emitted it), runs/s, server CPU ms per run, peak RSS.

Many streams (ours): R runs at once, each followed by J `join_stream` clients (Last-Event-ID 0 on resumable runs,
so a client that connects late still gets every event): every client must get every token in order; the delay
from the graph emitting a token to each client receiving it, for the tokens emitted once the client was connected
(its response had begun: earlier ones are replayed from storage, not published to it); how long the clients took
to connect, and how many connected after the first token; the server's RSS idle, at its peak, and after the
clients disconnect.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import asdict
from typing import Any, Awaitable, Callable

import httpx

from loadgen import CheckFailed, RawSSE, ServerProbe, _r, check, format_row, no_collections, ok_json, pct, run_scenario, tag

AGENT = {"tokens": 60, "token_gap": 0.003, "turns": 3}
# Idle connections are dropped before the server's keep-alive timeout (5 s): reusing one the server is just
# closing fails with a ReadError that says nothing about the server.
LIMITS = httpx.Limits(max_connections=2000, max_keepalive_connections=2000, keepalive_expiry=2.0)


class Tokens:
    """Checks one run's token stream (`<turn>.<index>@<emitted> `, bench/agent/agent.py) and keeps its delays."""

    def __init__(self, tokens: int, turns: int) -> None:
        self.tokens, self.turns = tokens, turns
        self.expected = (0, 0)
        self.delays: list[float] = []
        self.first: float | None = None

    def feed(self, data: str, received: float, since: float = 0.0) -> None:
        """`since`: delays only of tokens emitted from then on (those before were replayed, not published live)."""
        chunk = json.loads(data)[0]
        if chunk.get("type") != "AIMessageChunk":  # the tool's answer, streamed whole
            return
        for token in (chunk.get("content") or "").split():
            position, emitted = token.split("@")
            turn, index = (int(x) for x in position.split("."))
            check((turn, index) == self.expected, f"token {turn}.{index} where {self.expected} was due")
            self.expected = (turn, index + 1) if index + 1 < self.tokens else (turn + 1, 0)
            if float(emitted) >= since:
                self.delays.append((received - float(emitted)) * 1000)
            self.first = self.first or received

    def check_complete(self, about: str = "") -> None:
        """`about`: what else to tell when it fails."""
        check(self.expected == (self.turns, 0), f"stream ended at token {self.expected} of {self.turns} turns{about}")


def new_conversation(settings: dict) -> Callable[[httpx.AsyncClient], Any]:
    async def setup(client: httpx.AsyncClient) -> dict:
        thread = ok_json(await client.post("/threads", json={}))
        return {"thread_id": thread["thread_id"], "messages": 0, "settings": settings}
    return setup


def user_message() -> dict:
    return {"messages": [{"role": "user", "content": tag()}]}


class TurnCheck:
    """Checks one conversation turn from its events (name, JSON data, receive time) as a client gets them: each
    model turn's tokens complete and in order, the steps, and the tool seeing the thread's whole history."""

    def __init__(self, state: dict) -> None:
        self.state, self.settings = state, state["settings"]
        self.prev, state["messages"] = state["messages"], None  # unknown until this run answers correctly
        self.tokens = Tokens(self.settings["tokens"], self.settings["turns"])
        self.nodes: list[str] = []
        self.seen: list[str] = []

    def feed(self, name: str, data: str | bytes, received: float) -> None:
        check(name != "error", f"error event: {data[:200]}")
        self.seen.append(name)
        if name == "messages":
            self.tokens.feed(data, received)
        elif name == "updates":
            for node, update in json.loads(data).items():
                self.nodes.append(node)
                if node == "tools" and self.prev is not None:
                    # the tool read the thread's history from the checkpoints: all of it, in order
                    saw = int(update["messages"][0]["content"].rsplit("(", 1)[1].split()[0])
                    expected = self.prev + 2 + 2 * (self.nodes.count("tools") - 1)
                    check(saw == expected, f"the tool saw {saw} messages, {expected} expected")

    def finish(self, started: float, sink: dict[str, list[float]], about: str = "") -> dict[str, float]:
        """After the last event: the run is complete; its timings go to `sink`. `about`: what else to tell on failure."""
        self.tokens.check_complete(f" ({about}events {self.seen[:12]})")
        turns = self.settings["turns"]
        check(self.nodes == ["model", "tools"] * (turns - 1) + ["model"], f"steps {self.nodes}")
        self.state["messages"] = None if self.prev is None else self.prev + 2 * turns
        sink["token_delay"] += self.tokens.delays
        sink["first_token"].append((self.tokens.first - started) * 1000)
        return {"first_token": (self.tokens.first - started) * 1000}


async def conversation_turn(client: httpx.AsyncClient, state: dict, sink: dict[str, list[float]]) -> dict[str, float]:
    """One user message on the user's thread, streamed to its end and checked."""
    turn = TurnCheck(state)
    body = {"assistant_id": "agent", "input": user_message(), "stream_mode": ["messages-tuple", "updates"],
            "config": {"configurable": state["settings"]}}
    t0 = time.time()
    async with RawSSE(str(client.base_url), "POST", f"/threads/{state['thread_id']}/runs/stream", body) as r:
        check(r.status_code == 200, f"stream -> {r.status_code}")
        async for name, data, received in r.events():
            turn.feed(name, data, received)
    return turn.finish(t0, sink, f"{r.response_headers.get('content-location')}, ")


Turn = Callable[[Any, dict, dict[str, list[float]]], Awaitable[dict[str, float]]]


def window_for(n: int, quick: bool, window: tuple[float, float] | None = None) -> tuple[float, float]:
    """(seconds measured, warm-up seconds) at `n` conversations; `window`: instead of the defaults."""
    seconds, warmup = window or ((3.0, 1.0) if quick else (12.0, 2.0))
    # With many users a run lasts longer than the window (each server shares 2 cores among them): a window of
    # several runs' length, so that a server finishing runs slowly still shows a rate.
    return (seconds if quick or window or n < 100 else max(seconds, 30.0)), warmup


async def measure_conversations(client: Any, probe: ServerProbe, name: str, n: int, turn: Turn, setup: Callable,
                                seconds: float, warmup: float, log: Callable[[str], None] = print) -> dict:
    """`n` users taking `turn` after `turn` for `seconds` after `warmup`: the scenario's row, with the first token
    and the added delay per token."""
    sink: dict[str, list[float]] = {"token_delay": [], "first_token": []}

    async def op(c: Any, state: dict) -> dict[str, float]:
        return await turn(c, state, sink)

    async def forget_warmup() -> None:
        await asyncio.sleep(warmup)
        for values in sink.values():
            values.clear()

    clearing = asyncio.create_task(forget_warmup())
    res = await run_scenario(client, probe, name, n, op, setup=setup, seconds=seconds, warmup=warmup)
    await clearing
    row = asdict(res)
    row.update({
        "first_token_p50_ms": _r(pct(sink["first_token"], 0.5)), "first_token_p99_ms": _r(pct(sink["first_token"], 0.99)),
        "token_delay_p50_ms": _r(pct(sink["token_delay"], 0.5)), "token_delay_p99_ms": _r(pct(sink["token_delay"], 0.99)),
        "tokens": len(sink["token_delay"]),
    })
    log(format_row(res) + f"\n    first token p50 {row['first_token_p50_ms']} p99 {row['first_token_p99_ms']} ms; "
        f"added delay per token p50 {row['token_delay_p50_ms']} p99 {row['token_delay_p99_ms']} ms ({row['tokens']} tokens)")
    return row


async def conversations(url: str, pid: int | None, clients: tuple[int, ...] = (1, 16, 100), quick: bool = False,
                        settings: dict | None = None, log: Callable[[str], None] = print,
                        window: tuple[float, float] | None = None) -> dict:
    """`window`: (seconds measured, warm-up seconds) per scenario, instead of the defaults."""
    settings = {**AGENT, **(settings or {})}
    probe = ServerProbe(pid)
    results = []
    with no_collections():
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=LIMITS) as client:
            ok_json(await client.get("/ok"))
            idle_rss = probe.rss()
            probe.start()
            for n in clients:
                results.append(await measure_conversations(client, probe, "agent conversations", n, conversation_turn,
                                                           new_conversation(settings), *window_for(n, quick, window), log))
            await probe.stop()
    return {"settings": settings, "idle_rss_mb": round(idle_rss / 2**20, 1) if pid else None,
            "peak_rss_mb": round(probe.peak_rss / 2**20, 1) if pid else None, "results": results}


async def many_streams(url: str, pid: int | None, runs: int = 250, joiners: int = 4, tokens: int = 20,
                       token_gap: float = 0.25, start_delay: float = 8.0, settle: float = 5.0,
                       log: Callable[[str], None] = print) -> dict:
    """`runs` runs at once, each followed by `joiners` join_stream clients; see the module's docstring."""
    probe = ServerProbe(pid)
    settings = {"tokens": tokens, "token_gap": token_gap, "turns": 1, "start_delay": start_delay}
    delays: list[float] = []
    errors: list[str] = []
    connected: list[float] = []  # when each client's response began
    with no_collections():
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=LIMITS) as client:
            ok_json(await client.get("/ok"))
            idle_rss = probe.rss()
            threads = await asyncio.gather(*(client.post("/threads", json={}) for _ in range(runs)))
            body = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hi"}]},
                    "stream_mode": ["messages-tuple"], "stream_resumable": True, "config": {"configurable": settings}}
            probe.start()
            t0 = time.monotonic()
            created = await asyncio.gather(*(client.post(f"/threads/{ok_json(t)['thread_id']}/runs", json=body) for t in threads))

            async def follow(run: dict) -> None:
                check_tokens = Tokens(tokens, 1)
                try:
                    async with RawSSE(url, "GET", f"/threads/{run['thread_id']}/runs/{run['run_id']}/stream",
                                      headers={"Last-Event-ID": "0"}) as r:
                        check(r.status_code == 200, f"join_stream -> {r.status_code}")
                        since = time.time()  # the server subscribes this client before it answers
                        connected.append(since)
                        async for name, data, received in r.events():
                            check(name != "error", f"error event: {data[:200]}")
                            if name == "messages":
                                check_tokens.feed(data, received, since)
                    check_tokens.check_complete()
                    delays.extend(check_tokens.delays)
                except (CheckFailed, httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError, KeyError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])

            t_created = time.time()
            followers = [asyncio.create_task(follow(ok_json(run))) for run in created for _ in range(joiners)]
            await asyncio.sleep(start_delay * 0.8)
            connected_rss = probe.rss()
            await asyncio.gather(*followers)
            seconds = time.monotonic() - t0
            await probe.stop()
    await asyncio.sleep(settle)  # the clients have disconnected: memory should go back towards idle
    out = {
        "runs": runs, "joiners": joiners, "clients": runs * joiners, "settings": settings,
        "complete": runs * joiners - len(errors), "errors": len(errors), "error_samples": sorted(set(errors))[:3],
        "events": len(delays), "seconds": round(seconds, 1),
        "connect_p99_s": _r(pct([c - t_created for c in connected], 0.99)),
        "connect_all_s": _r(max(connected, default=t_created) - t_created),
        "late_clients": sum(c - t_created > start_delay for c in connected),
        "delay_p50_ms": _r(pct(delays, 0.5)), "delay_p99_ms": _r(pct(delays, 0.99)), "delay_max_ms": _r(max(delays, default=None)),
        "idle_rss_mb": round(idle_rss / 2**20, 1) if pid else None,
        "connected_rss_mb": round(connected_rss / 2**20, 1) if pid else None,
        "peak_rss_mb": round(probe.peak_rss / 2**20, 1) if pid else None,
        "after_rss_mb": round(probe.rss() / 2**20, 1) if pid else None,
    }
    log(f"many streams: {out['clients']} clients on {runs} runs: {out['complete']} complete, {out['errors']} errors; "
        f"all connected in {out['connect_all_s']} s ({out['late_clients']} after the first token); "
        f"{out['events']} live tokens, publish→client p50 {out['delay_p50_ms']} p99 {out['delay_p99_ms']} ms; RSS idle "
        f"{out['idle_rss_mb']} → connected {out['connected_rss_mb']} → peak {out['peak_rss_mb']} → after {out['after_rss_mb']} MB"
        + (f"\n    errors e.g.: {out['error_samples'][0]}" if errors else ""))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--pid", type=int, help="server pid, for CPU and RSS")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clients", default="1,16,100", help="concurrent conversations, comma-separated")
    parser.add_argument("--streams", type=int, default=250, help="runs followed by 4 join_stream clients each (0: none)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    data: dict[str, Any] = {}
    if args.clients:
        clients = tuple(int(c) for c in args.clients.split(","))
        data["conversations"] = asyncio.run(conversations(args.url, args.pid, clients, args.quick))
    if args.streams:
        data["streams"] = asyncio.run(many_streams(args.url, args.pid, runs=args.streams))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(data, fh, indent=2)


if __name__ == "__main__":
    main()
