"""Render bench/results.json as bench/RESULTS.md:  python bench/report.py [results.json]"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

Row = dict[str, Any]
GROWTH_NOISE_MB = 2.0  # RSS moving less than this between two samples is allocator noise, not growth
SAVER_FLOOR = "floor slow 5-step, async, our saver"
AGENT_FLOOR = "floor (in-process, our saver, no server)"


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
        floor = None
        if r["name"].startswith("stateless runs/wait"):
            floor = find(floor_rows, "floor echo, async", r["concurrency"])
        elif r["name"].startswith("threaded runs/wait"):
            floor = find(floor_rows, SAVER_FLOOR, r["concurrency"])
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
    soak, split = data["ours"].get("soak") or {}, data.get("split") or {}
    soak_end, growth = soak.get("rss_end_mb"), soak.get("growth_half_to_end_mb")
    ratio = split.get("ratio")
    split_rates = [r.get("window_rate") or r["rate"] for r in split.get("results", [])]
    errors = sum(r["errors"] for r in ours) + soak.get("errors", 0) + sum(r["errors"] for r in split.get("results", []))
    rows = [
        ("stateless echo, 1 client, p50", "≤ 15 ms", f"{_f(s1.get('p50_ms'))} ms", s1.get("p50_ms") is not None and s1["p50_ms"] <= 15),
        ("time to first SSE event, p50", "≤ 10 ms", f"{_f(ttfe)} ms", ttfe is not None and ttfe <= 10),
        ("stateless runs/s, 32 clients vs official", "≥ 3×", _ratio(s32.get("rate"), o32.get("rate")),
         bool(o32.get("rate")) and s32.get("rate", 0) >= 3 * o32["rate"]),
        ("stateless runs/s, 32 clients vs floor (async)", "≥ 0.70×", _ratio(s32.get("rate"), f32.get("rate")),
         bool(f32.get("rate")) and s32.get("rate", 0) >= 0.7 * f32["rate"]),
        ("threaded 5-step runs/s, 32 clients vs official", "≥ 1.5×", _ratio(t32.get("rate"), ot32.get("rate")),
         bool(ot32.get("rate")) and t32.get("rate", 0) >= 1.5 * ot32["rate"]),
        ("server peak RSS, load scenarios", "≤ 250 MB", f"{_f(rss)} MB", rss is not None and rss <= 250),
        (f"soak: server RSS after {soak.get('runs', 10_000):,} stateless runs", "≤ 250 MB", f"{_f(soak_end)} MB",
         soak_end is not None and soak_end <= 250),
        (f"soak: RSS growth from run {soak.get('half', 5_000):,} to {soak.get('runs', 10_000):,}",
         f"none (≤ {GROWTH_NOISE_MB:g} MB)", f"{'–' if growth is None else format(growth, '+.1f')} MB",
         growth is not None and growth <= GROWTH_NOISE_MB),
        ("split mode, CPU-bound runs/s: 2 workers vs 1", "≥ 1.6×",
         f"{_ratio(split_rates[1], split_rates[0]) if len(split_rates) == 2 else '–'}"
         + (f" ({split_rates[0]:.1f} → {split_rates[1]:.1f} runs/s)" if len(split_rates) == 2 else ""),
         ratio is not None and ratio >= 1.6),
        ("every response correct (incl. soak, split mode)", "0 errors", f"{errors} errors", errors == 0),
        *agent_targets(data),
    ]
    out = ["| target | goal | ours | met |", "|---|---|--:|:-:|"]
    out += [f"| {name} | {goal} | {value} | {'✓' if met else '✗'} |" for name, goal, value, met in rows]
    return "\n".join(out)


def _agent_row(data: dict, server: str, clients: int) -> Row:
    return find(((data.get("agent") or {}).get(server) or {}).get("results", []), "agent", clients) or {}


def agent_targets(data: dict) -> list[tuple[str, str, str, bool]]:
    """Round 2 (issue 13): agent-shaped load, our saver, many open streams."""
    floor_rows = data["floor"]["results"]
    ours, stock = find(floor_rows, SAVER_FLOOR, 32) or {}, find(floor_rows, "floor slow 5-step, async", 32) or {}
    a100, a1, o100 = _agent_row(data, "ours", 100), _agent_row(data, "ours", 1), _agent_row(data, "official", 100)
    st = data.get("streams") or {}
    delay, ttft, p99 = a100.get("token_delay_p99_ms"), a1.get("first_token_p50_ms"), st.get("delay_p99_ms")
    agent_errors = sum(r["errors"] for server in (data.get("agent") or {}).values() for r in server["results"])
    # st is already the wave with the median p99 (run.bench_streams); the return to idle is the median of its own
    waves = st.get("waves") or [st]  # results from before there were several waves have one
    backs = sorted(b for b in map(_rss_back, waves) if b is not None)
    back = backs[len(backs) // 2] if backs else None
    clients = st.get("clients", 0) * len(waves)
    complete, errors = sum(w.get("complete", 0) for w in waves), sum(w.get("errors", 0) for w in waves)
    peak = max((w["peak_rss_mb"] for w in waves if w.get("peak_rss_mb") is not None), default=None)
    return [
        ("5-step floor in-process, 32 clients: our saver vs the stock saver", "≥ 1.5×", _ratio(ours.get("rate"), stock.get("rate")),
         bool(stock.get("rate")) and ours.get("rate", 0) >= 1.5 * stock["rate"]),
        ("agent, 100 conversations: added delay per token, p99", "≤ 5 ms", f"{_f(delay)} ms", delay is not None and delay <= 5),
        ("agent, 1 conversation: time to first token, p50", "≤ 10 ms", f"{_f(ttft)} ms", ttft is not None and ttft <= 10),
        ("agent, 100 conversations: runs/s vs official", "≥ 2×", _ratio(a100.get("rate"), o100.get("rate")),
         bool(o100.get("rate")) and a100.get("rate", 0) >= 2 * o100["rate"]),
        ("agent: every run's tokens complete, in order, history intact", "0 errors", f"{agent_errors} errors",
         bool(data.get("agent")) and agent_errors == 0),
        (f"{st.get('clients', 0):,} open streams: every event delivered in order", "0 lost",
         f"{complete:,} of {clients:,} complete", bool(st) and errors == 0),
        (f"{st.get('clients', 0):,} open streams: publish → client, p99{_waves(waves)}", "≤ 50 ms",
         f"{_f(p99)} ms{_each(waves, lambda w: _f(w.get('delay_p99_ms')))}", p99 is not None and p99 <= 50),
        (f"{st.get('clients', 0):,} open streams: API process RSS", "≤ 300 MB", f"{_f(peak)} MB",
         peak is not None and peak <= 300),
        (f"open streams: RSS back to idle after they disconnect{_waves(waves)}", "≤ idle + 10 MB",
         f"{'–' if back is None else format(back, '+.1f')} MB{_each(waves, _back)}", back is not None and back <= 10),
        *_split_stream_targets(data),
    ]


def _waves(waves: list[dict]) -> str:
    return f" (the median of {len(waves)} fresh processes)" if len(waves) > 1 else ""


def _each(waves: list[dict], figure) -> str:
    return f" (each: {', '.join(figure(w) for w in waves)})" if len(waves) > 1 else ""


def _rss_back(wave: dict) -> float | None:
    """How far above idle a streams wave left the API process, in MB."""
    return None if wave.get("after_rss_mb") is None else wave["after_rss_mb"] - wave["idle_rss_mb"]


def _back(wave: dict) -> str:
    back = _rss_back(wave)
    return "–" if back is None else format(back, "+.1f")


def _split_stream_targets(data: dict) -> list[tuple[str, str, str, bool]]:
    """The same open streams on an API process that only relays (the runs in a worker process)."""
    split = data.get("streams_split")
    if not split:
        return []
    first, second = split["first"], split["second"]
    p99 = first.get("delay_p99_ms")
    cold, warm = _rss_back(first), _rss_back(second)
    return [
        ("split mode (API relays, runs in a worker): every event delivered in order", "0 lost",
         f"{first.get('complete', 0) + second.get('complete', 0):,} of {first.get('clients', 0) + second.get('clients', 0):,} complete",
         first.get("errors") == 0 and second.get("errors") == 0),
        ("split mode: publish → client, p99 (first wave; second)", "≤ 50 ms",
         f"{_f(p99)} ms; {_f(second.get('delay_p99_ms'))} ms", p99 is not None and p99 <= 50),
        ("split mode: API process RSS", "≤ 300 MB", f"{_f(first.get('peak_rss_mb'))} MB",
         first.get("peak_rss_mb") is not None and first["peak_rss_mb"] <= 300),
        ("split mode: RSS back to idle after they disconnect (a fresh process)", "≤ idle + 10 MB",
         f"{_back(first)} MB", cold is not None and cold <= 10),
        ("split mode: the same after a second wave (idle: where the first left it)", "≤ idle + 10 MB",
         f"{_back(second)} MB", warm is not None and warm <= 10),
    ]


def agent_section(data: dict) -> str:
    agent = data.get("agent") or {}
    if not agent:
        return "Not run."
    settings = next(iter(agent.values()))["settings"]
    out = [
        f"Graph `bench/agent/agent.py`: a fake chat model streams {settings['tokens']} tokens {settings['token_gap'] * 1000:g} ms "
        f"apart (AIMessageChunks), calls a tool, {settings['turns']} model turns per run, state a `messages` list (6 more "
        "messages and 6 checkpoints per run). Each user streams a run (`messages-tuple`, `updates`) on its own thread and "
        "sends the next message when it ends; every run is checked (every token, in order; the tool calls; the tool "
        "saw the whole history). Servers set to 100 concurrent runs (`N_JOBS_PER_WORKER=100`, official "
        "`--n-jobs-per-worker 100`). Added delay per token: receive time (when its bytes reach the client's socket "
        "reader) minus the time the graph emitted it; the load generator does not collect garbage while it measures.",
        "",
        "| server | conversations | runs ok | errors | runs/s | first token p50 ms | p99 ms | added delay/token p50 ms "
        "| p99 ms | CPU ms/run | peak RSS MB |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    names = {"ours": "ours (external PostgreSQL)", "ours_embedded": "ours (embedded PostgreSQL)", "official": "official (in-memory)",
             "floor": AGENT_FLOOR}
    if "floor" in agent:
        out[0] += " " + _agent_floor_note(agent)
    for key, server in agent.items():
        for r in server["results"]:
            out.append(
                f"| {names.get(key, key)} | {r['concurrency']} | {r['ok']} | {r['errors']} | {r['rate']:.1f} | "
                f"{_f(r['first_token_p50_ms'])} | {_f(r['first_token_p99_ms'])} | {_f(r['token_delay_p50_ms'])} | "
                f"{_f(r['token_delay_p99_ms'])} | {_f(r['cpu_ms_per_op'], '.1f')} | {_f(r.get('peak_rss_mb'))} |"
            )
    samples = [f"- {names.get(k, k)}, {r['concurrency']}: `{e}`" for k, v in agent.items() for r in v["results"]
               for e in r.get("error_samples", [])]
    return "\n".join(out + _against_floor(agent) + (["", "Errors (samples):", *samples] if samples else []))


def _agent_floor_note(agent: dict) -> str:
    return ("Floor rows (`bench/floor.py --agent`): the same graph, conversations and checks in one process "
            "with no HTTP, queue or server: `graph.astream` (`messages`, `updates`, durability `async`) on our saver "
            "over a pool of its own, each event serialized as our server serializes it; a token's delay runs to that "
            f"serialization. Run on {agent['floor'].get('event_loop', '–')} as our server is, with the garbage collector "
            "settled as our server settles it once started; its CPU and RSS are that process's (graph, saver, "
            "serialization and the checks).")


def _against_floor(agent: dict) -> list[str]:
    """Ours (external PostgreSQL) over the floor, at each number of conversations both ran."""
    ours, floor = (agent.get(k, {}).get("results", []) for k in ("ours", "floor"))
    pairs = [(r, f) for r in ours if (f := find(floor, "agent", r["concurrency"]))]
    if not pairs:
        return []
    return ["", "Ours (external PostgreSQL) against the floor, by conversations: " + "; ".join(
        f"{r['concurrency']}: runs/s {_ratio(r['rate'], f['rate'])}, CPU ms/run "
        f"{_ratio(r['cpu_ms_per_op'], f['cpu_ms_per_op'])}, added delay/token p99 {_f(r['token_delay_p99_ms'])} ms "
        f"against {_f(f['token_delay_p99_ms'])}" for r, f in pairs) + "."]


def streams_section(data: dict) -> str:
    st = data.get("streams")
    if not st:
        return "Not run."
    split = data.get("streams_split")
    return _streams_text(st, f"One `agent-server dev` process (API and queue, `N_JOBS_PER_WORKER={st.get('jobs', '–')}`)") + (
        "" if not split else "\n\n" + _streams_text(
            split["first"], f"Split mode, first wave: an `agent-server serve --no-queue` process (whose figures these are) "
            f"and one `agent-server worker` (`N_JOBS_PER_WORKER={split.get('jobs', '–')}`) that executes the runs, joined by "
            "PostgreSQL and Redis") + "\n\n" + _streams_text(split["second"], "Split mode, second wave, on the same processes"))


def _streams_text(st: dict, setup: str) -> str:
    cfg = st["settings"]
    return (
        f"{setup}: {st['runs']} runs at once "
        f"(resumable), each streaming {cfg['tokens']} tokens {cfg['token_gap'] * 1000:g} ms apart after {cfg['start_delay']:g} s, "
        f"each followed by {st['joiners']} `join_stream` clients (Last-Event-ID 0, so a late client misses nothing): "
        f"{st['clients']:,} SSE clients. {st['complete']:,} of {st['clients']:,} got every token in order "
        f"({st['errors']} errors). The clients took {_f(st.get('connect_all_s'))} s to connect (until each response began), "
        f"{st.get('late_clients', '–')} of them after the first token. Delay from the graph emitting a token to its bytes "
        f"reaching a client's socket reader (the load generator does not collect garbage while it measures), for the {st['events']:,} tokens emitted once their client was connected (earlier ones are replayed "
        f"from storage, not published live): p50 {_f(st['delay_p50_ms'])} ms, p99 {_f(st['delay_p99_ms'])} ms, max {_f(st['delay_max_ms'])} ms; "
        f"{st['seconds']} s in all. API process RSS: idle {_f(st['idle_rss_mb'])} MB, all clients connected "
        f"{_f(st['connected_rss_mb'])} MB, peak {_f(st['peak_rss_mb'])} MB, 5 s after they disconnected {_f(st['after_rss_mb'])} MB."
        + ("" if len(st.get("waves") or []) < 2 else
           f" These are the wave with the median p99 of {len(st['waves'])}, each on a fresh process: p99 "
           f"{', '.join(_f(w['delay_p99_ms']) for w in st['waves'])} ms; RSS after minus idle "
           f"{', '.join(_back(w) for w in st['waves'])} MB.")
        + ("\n\nErrors (samples):\n" + "\n".join(f"- `{e}`" for e in st["error_samples"]) if st["error_samples"] else "")
    )


def agent_analysis(data: dict) -> str:
    """Round 2's targets: numbers from this run, reasons from py-spy (bench/profile.py's method, 16 conversations)."""
    a1, a100, o100 = _agent_row(data, "ours", 1), _agent_row(data, "ours", 100), _agent_row(data, "official", 100)
    f1, f100 = _agent_row(data, "floor", 1), _agent_row(data, "floor", 100)
    st = data.get("streams") or {}
    return f"""\
- **Agent-shaped load (first token, added delay per token, 2× official at 100).** The floor rows answer
  how much of it is the server's: the same graph, conversations and checks in one process, with no HTTP, queue or
  server, on our saver. At 100 conversations the floor alone adds {_f(f100.get('token_delay_p50_ms'))} ms per token at p50 and
  {_f(f100.get('token_delay_p99_ms'))} ms at p99 ({_f(f100.get('cpu_ms_per_op'), '.1f')} ms of CPU per run, one core busy): the 5 ms target is
  below what the graph itself (langgraph's loop, langchain's callbacks per token, the saver, serializing each
  event) costs on one core of this machine, before any server; ours adds {_f(a100.get('token_delay_p99_ms'))} ms at p99 with
  {_f(a100.get('cpu_ms_per_op'), '.1f')} ms of CPU per run. At 1 conversation the floor's first token comes at
  {_f(f1.get('first_token_p50_ms'))} ms p50 and ours at {_f(a1.get('first_token_p50_ms'))} ms: the difference is the HTTP request, the run's
  creation and claim (one round trip, with its commit's flush to disk) and the SSE response. Timed inside the
  server this round (1 conversation, 30 turns on one thread, so 30 to 180 messages of history; marks in a scratch
  copy, from the request reaching the app; on this round's slower machine): the service is called at 0.8–1.1 ms;
  the run's creation, with its thread's latest checkpoint (and its blobs) read in the same round trip, is back at
  4.1–7.0 ms (2.9–3.9 ms without that read, which the run then makes itself); the run starts 0.3 ms later and
  decodes the history in 1.7–3.6 ms (the floor pays that too; about half the library's time, see "This round"); langgraph
  writes the input's checkpoint (0.8 ms), the response's head goes out 1.5 ms later, the model's node starts
  1.7 ms after that and makes its first token 0.9 ms later; then, before the token reaches the run's stream, the
  checkpoint of the step before (the whole history encoded again, 1–1.5 ms) has its turn on the loop; first token
  sent at 12–18 ms. Side by side (three fresh servers each, 30 turns), the checkpoint read with the creation or
  without it gave first tokens of 19.1, 14.8, 16.6 ms against 14.5, 16.2, 16.3 (p50): within the spread. So no
  one step is the gap: what would move it is the creation's round trip and less to encode and decode at a
  run's start (the history grows with every turn). Each run is 3 × 60
  tokens, each token one SSE event: at 100 conversations that is over 30,000 events a second asked of 2 cores shared
  with PostgreSQL and the load generator, so the server is CPU-bound and tokens queue: ours spends
  {_f(a100.get('cpu_ms_per_op'), '.1f')} ms of CPU per run ({_f(o100.get('cpu_ms_per_op'), '.1f')} ms the official one) and the
  added delay is the queueing. The settled garbage collector (an earlier round) took the p99 from about 240 ms to
  75 ms and the rate up by about a quarter (CPython's default thresholds walked the young objects of 100 runs in
  flight every few hundred allocations); measured as the bench now measures (bytes stamped on arrival, no
  collections in the load generator) and on this run's machine, it is {_f(a100.get('token_delay_p99_ms'))} ms. py-spy at 16 conversations (an earlier round): langgraph's loop with our run stream about
  28 %, the fake model and langchain's callback chain per token about 20 % (graph code: the official server pays
  it too), the checkpoint saver about 13 % (since cut: its writes are group-committed across runs, and its array
  parameters, a third of its time then, are dumped binary instead of escaped as text), the SSE writes about 9 %,
  the rest HTTP and our queue. Serializing one token's `messages-tuple` event is about 8 µs; what grows with a
  conversation is per run: every checkpoint writes the whole `messages` list again, and the run's end writes the
  thread's values. What would move it: split mode (runs in worker processes, the API only relaying), and a saver
  that writes only a list channel's new items. Time to first token at 1 conversation
  ({_f(a1.get('first_token_p50_ms'))} ms p50 in this run), timed by hand two rounds ago inside the server on a slow
  afternoon (32 runs in a row on one thread, medians from the request
  reaching the app): the route 0.7 ms; the run created and claimed and its thread's latest checkpoint read, one
  round trip with its commit's flush to disk, 4.0 ms (to 4.9); the history decoded 1.7 ms (up to about 190 messages,
  6 more a run); langgraph's start, the input's checkpoints and the first task's writes, to the model's call at
  12.1 ms, the creation's own answer and the SSE response's start sharing the event loop meanwhile; the model's
  first token 4.1 ms after its call (16.2: langchain's callbacks and langgraph's stream handler); its frame
  written 0.1 ms later. The client saw it at 20.6 ms p50: about 4 ms are outside the app (the load generator's
  request and parsing, the sockets, uvicorn reading the request). The floor, without any of the server's part,
  took {_f(f1.get('first_token_p50_ms'))} ms. What would move it: a faster commit (its flush is a third of the server's part
  on this machine), less of langgraph's start-up per run, a history not decoded again at every run
  (deserialized history kept per thread between runs: blobs are immutable per version, but graph code may
  mutate what it is handed, and a copy per run costs most of what it would save).
- **Many open streams.** {st.get('clients', 0):,} SSE clients on one process: every token is stored (the runs
  are resumable) and written to {st.get('joiners', 4)} sockets, {st.get('runs', 0)} runs at 4 tokens a second each, on
  2 cores shared with PostgreSQL and the load generator's readers. Earlier rounds: resumable events went from one
  awaited INSERT per token to a writer task grouping every run's events (p50 from about 2 s to a few ms), and the
  settled garbage collector took the p99 from 105–410 ms to 40–220 ms. Since an earlier round the load generator stamps bytes
  as they reach its socket reader and does not collect garbage while it measures (before, its own pauses of up to
  90 ms and the parsing of the other readers were timed as the server's); repeated runs of the scenario alone
  gave p99 37–73 ms (this run: {_f(st.get('delay_p99_ms'))} ms). Where the rest goes, measured by hand in earlier rounds:
  timed at the server's socket write, the p99 was 34 ms against 49 ms at the clients in the same run, so most of
  it is the server's. A monitor of the event loop saw it busy for stretches of 10–28 ms (a long ready queue, no
  single slow callback) and about 8 young collections of 20–25 ms in the token phase. py-spy over the token
  phase: storing the events about a third of the process's CPU, because the groups are small (about 400
  statements a second, most carrying under 10 events: the runs' tokens come evenly spread, and a group goes as
  soon as the last one is written); the socket writes about 15 %; the graph and langchain's callbacks per token
  about a quarter. Tried and not kept, as both stayed within the run-to-run spread: a 1–2 ms wait before each
  group to make it larger, and young-generation thresholds of 5,000, 10,000 and 20,000 (shorter young pauses, but
  second-generation ones of 40–140 ms). What moves it: the runs in a worker process (split mode), the API
  process only relaying{_split_streams_note(data)}; and readers on another machine. In an earlier round, in split mode,
  each token was stamped in both processes (by hand, 13 runs of 250 runs × 4 clients): from the graph emitting
  it to its publish in the worker, p50 2.5–13 ms and p99 18–250 ms (the worker's loop runs the 250 runs' graph
  work, and a resumable run's event is stored before it is published); from the publish to its write to each
  client's socket in the API process (Redis, then the relay to 4 clients), p50 2–14 ms and p99 19–159 ms
  (median of the runs 83 ms). So "publish → client", the issue's measure, is the smaller part, near the target
  in the quieter runs; what the clients see (the figures above) also holds the emitting side. The worker
  collected its second generation once per wave (116–142 ms) and its young one in pauses of up to 38–98 ms:
  each such pause delays every token emitted meanwhile. Tried on one process in an earlier round: a young threshold of
  10,000 with the older ones scaled to match (10,000, 100, 10), and no automatic full collections (a third
  threshold of 1,000); both stayed within the run-to-run spread. The clients' connection burst
  ({_f(st.get('connect_all_s'))} s for {st.get('clients', 0):,} `join_stream` requests, two queries each) ends before
  the first token, so it is not in the delays. RSS after the clients leave ({_f(st.get('after_rss_mb'))} MB) stays
  near the peak, and a second wave of 1,000 clients on the same process brought it no higher (measured by hand:
  195 → 201 → 198 MB): a high-water mark, not a ratchet. Measured inside the process (sys._debugmallocstats,
  tracemalloc, an earlier round): after a small first wave (10 runs) and then the 1,000 clients, live allocations
  are 0.6 MB above what they were between the waves, but CPython's object allocator holds 121 arenas of 1 MB
  instead of 59, some 40 MB of them in wholly unused pools: an arena goes back to the system only when every
  block in it is free, and a few blocks that outlive the burst pin each one. The pool's extra connections are
  not what holds it: with the pool capped at 20 or 40 connections (an earlier round) RSS after was 198 MB, as
  without. `malloc_trim` gave back 9 MB; `PYTHONMALLOC=malloc` (an earlier round) 46 MB, still 55 MB above idle
  and slower; the last round's census of the arenas found no one kind of survivor holding them (each new arena
  kept a few objects of several kinds: pool connections opened in the burst with their prepared statements, metric
  children, closures; the pool capped at 3 or 20, a warm-up before idle, the idle connections closed after the
  wave each left RSS where it was). This round, by hand (one process, one wave, mappings read from
  /proc/PID/smaps): of what stays, about three quarters is CPython's arenas (1 MB mappings: 42 → 81 MB) and the rest
  glibc's heap (31 → 45 MB; `malloc_trim` gives back half of that); a full collection after the wave finds
  nothing unreachable (it is not garbage waiting for the collector, whose young threshold the server raised), and
  the allocated blocks are 7,000 more than at idle (569,000 → 576,000, under 1 MB); tracemalloc over a second wave
  traces 0.4 MB alive from it: a few survivors spread over many arenas. Other allocators, same wave: `PYTHONMALLOC=malloc` with
  `malloc_trim` after it, +34 MB; jemalloc (`LD_PRELOAD`, 1 s decay), +40 MB. 250 runs with no clients hold
  +30 MB while they run, so about 120 KB a run and 40 KB a stream, most of it langgraph's and the HTTP stack's.
  What would lower it: fewer objects per open stream (most are the HTTP frameworks' per request) and per running run, or the runs in worker processes of their own (at the peak the process holds 250 runs in flight as well as the 1,000 streams)."""


def _split_stream_note(wave: dict) -> str:
    return (f"p99 {_f(wave.get('delay_p99_ms'))} ms, RSS idle {_f(wave.get('idle_rss_mb'))} → peak "
            f"{_f(wave.get('peak_rss_mb'))} → after {_f(wave.get('after_rss_mb'))} MB")


def _split_streams_note(data: dict) -> str:
    split = data.get("streams_split")
    if not split:
        return ""
    return (f" (this run, API process: first wave {_split_stream_note(split['first'])}; second wave "
            f"{_split_stream_note(split['second'])}: what the first wave leaves is a high-water mark the second "
            "reuses, not a ratchet)")


def _cpu_split(ours: dict, official: dict) -> str:
    """Where the machine's CPU went in a scenario, ours then the official server's (run.bench_server's groups)."""
    def split(row: dict) -> str:
        by = row.get("cpu_pct_by") or {}
        parts = [f"{name} {by[name]:.0f} %" for name in ("server", "PostgreSQL", "load generator") if name in by]
        return f"{', '.join(parts)}, the rest {by['anything else on the machine']:.0f} %"

    if not (ours.get("cpu_pct_by") and official.get("cpu_pct_by")):
        return ""
    return f" (this run's CPU, of the machine's 200 %, ours: {split(ours)}; the official's: {split(official)})"


def _threaded_this_run(ours: dict, official: dict) -> str:
    """Why this run's threaded ratio is what it is, when the official server's CPU per run is far from ours."""
    mine, theirs = ours.get("cpu_ms_per_op"), official.get("cpu_ms_per_op")
    if not (mine and theirs) or theirs < 1.5 * mine:
        return ""
    return (f", the official server spending {theirs:.1f} ms of CPU per threaded run against {mine:.1f} for ours: in the "
            "last round's full run they spent 6.9 and 6.4 ms. On this run's machine, about half as fast, the "
            "official server's threaded runs (its runs execute on several event loops in threads of one process) cost it "
            "2.5× their CPU of then and ours 1.4×, while its CRUD requests cost it what ours cost us. A side run of both "
            "servers right after it (`--only ours,official`) gave 1.49× (88.0 against 59.1 runs/s; 10.7 and 16.6 ms of CPU "
            "per run). So the target is met here by the official server slowing more than ours on this machine, not by a "
            "change of ours")


def analysis(data: dict) -> str:
    """Where the time goes, for the targets a run may miss; numbers from this run, reasons from profiles."""
    ours, official, floor_rows = data["ours"]["results"], data["official"]["results"], data["floor"]["results"]
    t32, ot32 = find(ours, "threaded", 32) or {}, find(official, "threaded", 32) or {}
    f5 = find(floor_rows, SAVER_FLOOR, 32) or {}
    f5stock = find(floor_rows, "floor slow 5-step, async", 32) or {}
    s32, o32 = find(ours, "stateless runs/wait", 32) or {}, find(official, "stateless runs/wait", 32) or {}
    fnone = find(floor_rows, "floor echo, no checkpointer", 32) or {}
    return f"""\
- **Threaded 5-step runs, 1.5× official.** The same graph invoked in-process on the same PostgreSQL, with no
  HTTP and no queue, reaches {_f(f5.get('rate'))} runs/s at 32 clients with our saver ({_f(f5stock.get('rate'))} with the
  stock saver), against {_f(ot32.get('rate'))} for the in-memory official server; 1.5× official would be
  {_ratio(1.5 * (ot32.get('rate') or 0), f5.get('rate'))} the floor. Each run commits 6 checkpoints and 5 sets of writes
  to PostgreSQL (durability `async`), and PostgreSQL shares the 2 cores with the server and the load generator{_cpu_split(t32, ot32)}.
  Ours reaches {_f(t32.get('rate'))} runs/s = {_ratio(t32.get('rate'), f5.get('rate'))} of that floor, spending
  {_f(t32.get('cpu_ms_per_op'), '.1f')} ms of server CPU per run against {_f(f5.get('cpu_ms_per_op'), '.1f')} for the floor, on one
  core (one process: API and queue). py-spy at 32 clients (an earlier round; this round's in "This round"): the graph's run (langgraph's loop and the
  nodes) over a third, the HTTP request about a fifth (creating the run about half of that), the saver's grouped
  writes a tenth, the queue's loop and the run's end under a tenth, psycopg's per-statement work spread through all
  of these. The ratio moves with the machine more than with our code: earlier full runs had ours at 1.04× to 1.27×
  the official server's rate; this run {_ratio(t32.get('rate'), ot32.get('rate'))}{_threaded_this_run(t32, ot32)}. This machine's speed moves by
  up to 2× between full runs, for both servers and for the floor. What moved ours two rounds ago (CPU per run from 9.3 to
  6.4 ms): most of it, the
  garbage collector settled at start (what is alive once the process has started is frozen out of collections,
  and the youngest generation is collected every 50,000 allocations instead of 700: CPython's default thresholds
  made it walk the young objects of every run in flight every few hundred allocations); a run's end in one
  statement after its thread's lock (BEGIN, lock, end, COMMIT: two round trips fewer); and a run with nothing
  ahead of it started by the statement that queues it when this process has a free slot (at 32 clients the slots
  are full, so here it changes little: see the 1-client rows). Earlier rounds: the saver group-commits (the floor
  is {_ratio(f5.get('rate'), f5stock.get('rate'))} the stock saver's) and dumps its arrays binary; no saver lock, no connection
  check per checkout, no read of the final state after a run, no idle spin of the webhook deliverer, no query per
  run for thread event readers or webhooks, a run on an idle thread queued in one statement. Ours spends less
  CPU per run than the official server ({_f(t32.get('cpu_ms_per_op'), '.1f')} against {_f(ot32.get('cpu_ms_per_op'), '.1f')} ms here), durable; on a machine where
  the official server runs as fast as ours, 1.5× its rate (more than the in-process floor in some runs) needs
  about a third less CPU per run than ours. A second process did not get it (an earlier round: split mode gave
  157–169 runs/s, its worker not saturated, bound by the round trips between the processes). What would move it
  is less of langgraph's per-step work: its loop, not ours, is
  now the largest part of a run.
- **Stateless runs, 3× official.** Stateless runs take no checkpoints (as the official server's), so the limit
  is CPU: ours spends {_f(s32.get('cpu_ms_per_op'), '.1f')} ms of server CPU per run against
  {_f(o32.get('cpu_ms_per_op'), '.1f')} ms for the official one, plus PostgreSQL's share for the statements that make a
  run durable (create, claim when the slots were full at its creation, the end's transaction);
  the bare graph costs about
  {_f(1000 / fnone['rate'] if fnone.get('rate') else None, '.1f')} ms. py-spy at 32 clients: request handling in
  FastAPI/pydantic about a quarter, psycopg round trips about a third, langgraph about a quarter.
- **Latency at 1 client and the first SSE event.** Each is an HTTP request plus one query before the run
  starts (the run's creation, which also claims it for this process's free slot: no wake-up and no claim query;
  and no read of the assistant); both move with the machine's load and the disk's flush time
  (see "This round" above).
- **Noise.** On this shared 2-core machine, two full runs a few minutes apart differed by up to ±30 % at 32
  clients, for both servers (compare the load average above); the CPU ms/op columns are steadier than rates.
{agent_analysis(data)}
- **Split mode, 1.6×.** The CPU-burning graph needs a core per worker; two workers, the API process, PostgreSQL,
  Redis and the load generator share 2 cores here, so the second worker gets what the others leave (see the CPU
  column of the split table).
"""


def soak_section(soak: dict) -> str:
    if not soak:
        return "(not run)"
    runs = soak["runs"]
    head = (f"{runs:,} stateless echo `runs/wait` from {soak['concurrency']} clients on the server that had just run "
            f"the scenarios above, each response checked: {soak['ok']:,} correct, "
            f"{'**' + str(soak['errors']) + '** ✗' if soak['errors'] else '0'} errors, in {soak['seconds']} s "
            f"({soak['rate']} runs/s, p50 {_f(soak['p50_ms'])} ms, p99 {_f(soak['p99_ms'])} ms, "
            f"{soak.get('stalled', 0)} correct but slower than 10 s, "
            f"{_f(soak.get('cpu_ms_per_op'), '.2f')} server CPU ms/run). Server RSS (process tree, PostgreSQL "
            f"excluded) after every 1,000 runs; peak {_f(soak.get('peak_rss_mb'))} MB.")
    table = ["| runs done | " + " | ".join(f"{s['runs']:,}" for s in soak["samples"]) + " |",
             "|---|" + "--:|" * len(soak["samples"]),
             "| RSS MB | " + " | ".join(_f(s["rss_mb"]) for s in soak["samples"]) + " |",
             "| seconds | " + " | ".join(_f(s["seconds"]) for s in soak["samples"]) + " |"]
    errors = [f"- `{e}`" for e in soak.get("error_samples", [])]
    return "\n".join([head, "", *table] + (["", "Errors (samples):", *errors] if errors else []))


def bodies_section(b: dict) -> str:
    if not b:
        return "(not run)"
    return (f"Status codes of {len(b['refused'])} bodies of 100 MB: {b['refused']}; of {len(b['accepted'])} bodies of "
            f"12 MB: {b['accepted']}. Server RSS (with its children): idle {b['idle_rss_mb']} MB, after the refused "
            f"{b['after_refused_rss_mb']} MB, after the accepted {b['after_accepted_rss_mb']} MB, 3 s later "
            f"{b['after_pause_rss_mb']} MB.")


def chaos_section(chaos: dict) -> str:
    if not chaos:
        return "(not run)"
    return (f"No `migrate` step: the three processes migrate among themselves. Of {chaos['runs']} threaded 5-step runs: "
            f"{', '.join(f'{n} {s}' for s, n in sorted(chaos['statuses'].items()))}; {chaos['resumed']} were cut off by "
            f"the SIGKILL and resumed from their last checkpoint on the surviving worker; all done in {chaos['seconds']} s "
            f"(lease 5 s).")


def split_section(split: dict) -> str:
    if not split:
        return "(not run)"
    rows = split["results"]
    groups = list(dict.fromkeys(k for r in reversed(rows) for k in r.get("cpu_pct_by", {})))  # 2 workers first
    out = [
        f"`agent-server serve --no-queue` plus `agent-server worker` processes (default `N_JOBS_PER_WORKER`), joined by "
        f"PostgreSQL and Redis (`{split.get('redis')}`), all on this machine. {split['clients']} clients run "
        f"stateless `runs/wait` of the `slow` graph with config `{json.dumps(split['config'])}`: each of its 5 steps "
        "spins the CPU for 20 ms, so a run is ≥ 100 ms of one worker's CPU and one worker (one Python process) "
        "tops out below 10 runs/s. Each row is measured after the workers are ready and one run has gone through. "
        "The machine has 2 cores for the API, the workers, PostgreSQL and the load generator: with 2 workers, "
        "their share of the 2 cores, not their number, bounds the rate.",
        "",
        "| setup | clients | ok | errors | runs/s completed in window | runs/s, all started (s) | runs > 10 s "
        "| p50 ms | p95 ms | p99 ms | CPU ms/run (API + workers) | peak RSS MB (API + workers) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        errors = f"**{r['errors']}** ✗" if r["errors"] else "0"
        out.append(f"| {r['name'].removeprefix('split: ')} | {r['concurrency']} | {r['ok']} | {errors} | "
                   f"{_f(r.get('window_rate'))} | {r['rate']:.1f} ({r['seconds']:.0f} s) | {r.get('stalled', '–')} | "
                   f"{_f(r['p50_ms'])} | {_f(r['p95_ms'])} | {_f(r['p99_ms'])} | {_f(r['cpu_ms_per_op'], '.2f')} | "
                   f"{_f(r.get('peak_rss_mb'))} |")
    out += ["", f"2 workers vs 1 (runs completed in the window): **{_f(split.get('ratio'), '.2f')}×**. "
            "\"Completed in window\" counts the runs that ended within the measurement window, over its length; "
            "\"all started\" counts every run started in the window, over the time until the last of them ended, "
            "so a few runs stalled for tens of seconds stretch it (and show in the \"runs > 10 s\" and p99 columns).", "",
            "CPU use per process during each measurement (100 % = one core, the machine has 200 %; PostgreSQL = "
            "the backends connected to the benchmark's database; \"anything else\" = other PostgreSQL processes, "
            "the kernel, and whatever else runs on the machine, such as other users' processes):", "",
            "| setup | " + " | ".join(groups) + " |", "|---|" + "--:|" * len(groups)]
    for r in rows:
        by = r.get("cpu_pct_by", {})
        out.append(f"| {r['name'].removeprefix('split: ')} | " + " | ".join(_f(by.get(g)) for g in groups) + " |")
    share = []
    for r in rows:
        workers = sum(v for k, v in r.get("cpu_pct_by", {}).items() if k.startswith("worker"))
        if workers and r.get("window_rate"):
            share.append(f"{r['name'].removeprefix('split: ')}: the workers had {workers:.0f} % of a core in all, "
                         f"{10 * workers / r['window_rate']:.0f} worker CPU ms per completed run")
    if share:
        out += ["", "Workers' CPU: " + "; ".join(share) + ". Equal CPU ms per run means the workers scale with the CPU "
                "they get; the ratio is then their CPU share with 2 workers over that with 1."]
    samples = [f"- {r['name']}: `{e}`" for r in rows for e in r.get("error_samples", [])]
    return "\n".join(out + (["", "Errors (samples):", *samples] if samples else []))


def modes_section(data: dict) -> str:
    """bench/modes.py's figures: each deployment mode's runs/s, and light runs' stream delay beside runs that hog
    their event loop (the reason distributed mode exists)."""
    if not data:
        return "(not run)"
    st = data["settings"]
    out = [
        "The same API in three topologies on this machine (PostgreSQL and Redis shared): single host (`agent-server "
        "dev`: API and queue in one process), split (`serve --no-queue` + one `worker`) and distributed (`serve "
        f"--no-queue` + `worker --executors {st['executors']}`: an orchestrator and {st['executors']} executor "
        f"processes joined by gRPC). Runs/s: {st['clients']} clients run stateless `runs/wait` of the `slow` graph "
        f"without delay for {st['seconds']:g} s. Stream delay: {st['light_runs']} light runs (5 steps of "
        f"{st['step_ms']:g} ms), streamed one after another while {st['hogs']} other runs execute steps of "
        f"{st['hog_step_s']:g} s that burn the CPU (`burn`) or block their thread (`block`, time.sleep); "
        f"delay = each gap between two `updates` events minus the step's {st['step_ms']:g} ms.",
        "",
        "| mode | runs/s | delay beside CPU-bound runs, p50 / p95 / max ms | delay beside blocking runs, p50 / p95 / max ms |",
        "|---|--:|--:|--:|",
    ]
    for mode, r in data["modes"].items():
        delays = [" / ".join(_f(d.get(k)) for k in ("p50_ms", "p95_ms", "max_ms"))
                  for d in (r["stream_delay_burn"], r["stream_delay_block"])]
        out.append(f"| {mode} | {_f(r['runs_per_s'])} | {delays[0]} | {delays[1]} |")
    out += ["", "A run's graph code shares its process's event loop with the others' in single host and split mode: a "
            "step that burns the CPU or blocks holds every other run of that process, and so their streams, for as long. An executor runs each "
            "run on a thread and event loop of its own, so the light runs' events keep flowing; what it costs is the "
            "extra hop (executor → orchestrator → Redis → API) and the processes."]
    return "\n".join(out)


# Measured by hand on 2026-12-02/03 (night), beside the full run of that time: scratch drivers of the streams scenario
# (bench/agent_bench.py's many_streams) with gc callbacks, tracemalloc snapshots and API processes started alternately.
def this_round(data: dict) -> str:
    a1, f1 = _agent_row(data, "ours", 1), _agent_row(data, "floor", 1)
    st = data.get("streams") or {}
    echo1 = find(data["floor"]["results"], "floor echo, async", 1) or {}
    t32, ot32 = find(data["ours"]["results"], "threaded", 32) or {}, find(data["official"]["results"], "threaded", 32) or {}
    return f"""\
This round's one server change: LangChain's messages are read back from checkpoints without being validated a
second time. It also times the first token inside the server step by step and profiles both kinds of runs
again. The machine ran about half as fast as for the last round's full runs (the echo floor at 1 client
{_f(echo1.get('rate'))} runs/s against 168.0 and 182.8; CPU per threaded run at 32 clients {_f(t32.get('cpu_ms_per_op'), '.1f')} ms for ours against 6.4):
the figures that follow the machine's speed are worse than the last round's with no change of ours behind them
(first token at 1 conversation {_f(a1.get('first_token_p50_ms'))} ms, the floor's {_f(f1.get('first_token_p50_ms'))}; the 1,000 streams' p99 a median of
{_f(st.get('delay_p99_ms'))} ms, against 54.6 and 44.8 in the last round's two runs; split mode's, 19.5 ms then, is
{_f(((data.get('streams_split') or {}).get('first') or {}).get('delay_p99_ms'))} ms here, and side by side with the last round's code on this machine (eight runs each,
a fresh API and worker each time), it came out the same: first-wave p99 76–254 ms (median 152) with that code, 81–312 (median 150)
with this round's, the second wave's medians 88 and 122 ms within the same spread). The official server slowed more than
ours on this machine: its CPU per threaded run at 32 clients was {_f(ot32.get('cpu_ms_per_op'), '.1f')} ms against 6.9, which puts the threaded
ratio over its target in this run (see "Where the time goes").

- **Messages read back without being validated again** (`storage/serializer.py`, our saver's serializer, and
  `checkpointer.serde`'s). A run's start reads its thread's whole message history, and so does every state and
  history read. langgraph's serializer rebuilds each stored message through its class's constructor, which
  validates again what was validated when the message was made. Ours is JsonPlusSerializer with one change:
  a LangChain message stored in its class's current shape (every field, as `model_dump` writes them) is rebuilt
  with `model_construct`, pydantic's constructor for trusted data; any other shape (a message written by an
  older langchain, say) and every other type go to the library's code, its allowlist included. It writes the
  same bytes, so the library reads what it writes. Measured by hand, a history of 120 messages (human, AI with
  tool calls, tool answers): 1.43 ms to read with the library's serializer, 0.80 ms with ours (0.16 ms of
  either is msgpack itself). Also tried: setting each message's fields directly instead of `model_construct`
  (0.45 ms), not kept, as it depends on pydantic's internals. In the server, the decode at a run's start took
  1.7–3.6 ms at 30 to 180 messages on this machine (see the first token in "Where the time goes"); at 100
  conversations (py-spy, short histories) decoding is 0.5 % of the process and encoding the checkpoints 2.2 %,
  so this counts for long conversations and state reads, not for the rates above. Tested
  (`tests/unit/test_checkpoint_serializer.py`): every kind of message, nested in other values, reads back
  equal to the library's read, class, fields, set fields and extras alike; a message in the current shape is
  not validated (its constructor is not called; the library's read calls it); a message in an older shape
  goes through its constructor (tool calls derived from `additional_kwargs`); the allowlist still decides for
  other classes, on a clone made by `with_msgpack_allowlist` too; our saver takes it by default and with
  `checkpointer.serde`.
- **The first token, step by step** (marks in a scratch copy of the server, 1 conversation): the run's creation
  with its checkpoint read in the same round trip, the history's decode, the input's checkpoint, the node's
  start, and the checkpoint of the step before the model's, whose encoding of the whole history runs on the
  loop between the model making its first token and the run's stream sending it. Details and figures under
  "Where the time goes"; reading the checkpoint with the creation or in the run's own query made no difference
  beyond the spread (three fresh servers each way).
- **Profiles** (py-spy, by hand, on this machine). Threaded 5-step runs at 32 clients: langgraph's loop with the
  graph 32 % of the process; psycopg's statement machinery 17 % (the saver's grouped writes 7.4 %, of which
  converting their array parameters 3.6 %; the run's creation 4.6 %); the HTTP stack around the handlers about
  9 %; logging 2.8 %. No one part of ours is large enough that removing it would reach 1.5× the official server
  on a machine where both run as fast (see "Where the time goes"). Agent-shaped, 100 conversations: the SSE
  responses 8 %, langchain's callbacks per token 5.3 %, our JSON of each event 4.5 %, the checkpoints' encoding
  2.2 %, the history's decoding 0.5 %.

The last round's changes, which this run measures as well: the routes and anyio's backend made ready at start
(a fresh server's first `POST /threads` 5.0 ms against 14–15); the 1,000 streams run as three waves on fresh
processes, the targets taking the median; the machine's CPU split per scenario between the server, PostgreSQL
and the load generator (in the analysis below). Tried in earlier rounds and not kept, each measured: another
allocator (mimalloc on CPython 3.13: +50–58 MB after a wave instead of +76), a capped pool, closing the idle
connections after a wave, publishes that do not wait for Redis, two saver groups in flight."""


def loaded_warning(meta: dict) -> str:
    cores = int(meta["machine"].split()[0])
    if meta["load_average_at_start"] <= cores:
        return ""
    return (f"\n**Measured on a loaded machine** (load average {meta['load_average_at_start']} at start on {cores} cores): "
            "these figures measure contention with other work, not the servers; re-run on a quiet machine.\n")


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
{loaded_warning(m)}
## Targets (ours)

{targets(data)}

## This round: what changed, measured side by side

{this_round(data)}

## Where the time goes (targets not met)

{analysis(data)}

## Agent-shaped load: ours vs official

{agent_section(data)}

## Many open streams (ours)

{streams_section(data)}

## Ours vs official vs floor

{comparison(ours['results'], official['results'], floor['results'])}

## Ours (idle: CPU {_f(ours.get('idle_cpu_pct'))} %, RSS {_f(ours.get('idle_rss_mb'))} MB; peak RSS {_f(ours.get('peak_rss_mb'))} MB)

{server_table(ours['results'])}

## Official `langgraph dev` (idle: CPU {_f(official.get('idle_cpu_pct'))} %, RSS {_f(official.get('idle_rss_mb'))} MB; peak RSS {_f(official.get('peak_rss_mb'))} MB)

{server_table(official['results'])}

## Soak (ours): memory over {(ours.get('soak') or {}).get('runs', 0):,} runs

{soak_section(ours.get('soak') or {})}

## Split mode (ours): API + 1 worker, then + 2 workers

{split_section(data.get('split') or {})}

## Deployment modes (ours): single host vs split vs distributed

{modes_section(data.get('modes') or {})}

## Chaos (ours): API + 2 workers started together on an empty database, one killed mid-way

{chaos_section(data.get('chaos') or {})}

## Big bodies (ours): refused over the limit, no memory ratchet under it

{bodies_section(data.get('bodies') or {})}

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
