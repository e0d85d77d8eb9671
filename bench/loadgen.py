"""Load generator for an Agent Server (ours or the official one), with a correctness check on every response.

    python bench/loadgen.py --url http://127.0.0.1:2024 [--pid PID] [--json out.json] [--quick]

Only correct responses count towards a rate: a wrong answer, a non-2xx status or a timeout is an error.
With --pid, the server's CPU time and peak RSS are sampled with psutil (the process and its children,
except PostgreSQL). With --soak N, N stateless echo runs follow the scenarios, with the server's RSS sampled
every 1,000 runs (a leak shows as growth between the middle and the end).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import httpx
import psutil

STEPS = [f"step{i}" for i in range(1, 6)]
SLOW_CONFIG = {"configurable": {"delay": 0}}
STALLED_SECONDS = 10.0
BURN_CONFIG = {"configurable": {"delay": 0.02, "burn": 1}}  # each of the 5 steps spins the CPU for 20 ms


class CheckFailed(Exception):
    """The server answered, but not with what a correct server answers."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


# --- server resources ------------------------------------------------------------------------


class ServerProbe:
    """CPU seconds and RSS of a server's process trees (one pid, or several: API and workers), PostgreSQL
    processes excluded."""

    def __init__(self, pid: int | list[int] | None) -> None:
        pids = [pid] if isinstance(pid, int) else list(pid or [])
        self.roots = [psutil.Process(p) for p in pids]
        self.root = self.roots[0] if self.roots else None
        self.peak_rss = 0
        self.window_peak_rss = 0
        self._task: asyncio.Task | None = None

    def procs(self) -> list[psutil.Process]:
        procs: list[psutil.Process] = []
        for root in self.roots:
            try:
                procs += [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        return [p for p in procs if "postgres" not in _name(p)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.procs():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def rss(self) -> int:
        total = 0
        for p in self.procs():
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    async def _sample(self) -> None:
        while True:
            rss = self.rss()
            self.peak_rss = max(self.peak_rss, rss)
            self.window_peak_rss = max(self.window_peak_rss, rss)
            await asyncio.sleep(0.2)

    def start(self) -> None:
        if self.root is not None:
            self._task = asyncio.create_task(self._sample())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def _name(p: psutil.Process) -> str:
    try:
        return p.name().lower()
    except psutil.Error:
        return ""


def tree(pid: int) -> Callable[[], list[psutil.Process]]:
    """The processes of one server (a pid and its children, PostgreSQL excluded), looked up when called."""
    return lambda: ServerProbe(pid).procs()


class CpuMeter:
    """CPU use of named groups of processes, and of the whole machine, between two snapshots.

    A group is a function returning its processes when called (so processes appearing during the window,
    such as new PostgreSQL backends, count from their start)."""

    def __init__(self, groups: dict[str, Callable[[], list[psutil.Process]]]) -> None:
        self.groups = groups

    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {"_time": time.perf_counter()}
        for name, procs in self.groups.items():
            per_pid: dict[int, float] = {}
            for p in procs():
                try:
                    t = p.cpu_times()
                    per_pid[p.pid] = t.user + t.system
                except psutil.Error:
                    pass
            snap[name] = per_pid
        t = psutil.cpu_times()
        snap["_machine"] = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
        snap["_steal"] = getattr(t, "steal", 0.0)
        return snap

    @staticmethod
    def percent(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
        """CPU % per group (100 % = one core), then "anything else on the machine", "machine (all processes)",
        and the time the hypervisor gave to others while this machine wanted the CPU ("stolen")."""
        elapsed = max(after["_time"] - before["_time"], 1e-9)
        out: dict[str, float] = {}
        for name, per_pid in after.items():
            if not name.startswith("_"):
                out[name] = sum(cpu - before[name].get(pid, 0.0) for pid, cpu in per_pid.items()) / elapsed * 100
        machine = (after["_machine"] - before["_machine"]) / elapsed * 100
        out["anything else on the machine"] = max(0.0, machine - sum(out.values()))
        out["machine (all processes)"] = machine
        out["stolen by the hypervisor"] = (after["_steal"] - before["_steal"]) / elapsed * 100
        return {k: round(v, 1) for k, v in out.items()}


# --- scenario runner ---------------------------------------------------------------------------

# An operation: one unit of work (a run, a CRUD cycle) by one client. It raises on a wrong answer and
# may return extra timings in ms (e.g. time to first event) to report as percentiles.
Op = Callable[[httpx.AsyncClient, dict], Awaitable[dict[str, float] | None]]
Setup = Callable[[httpx.AsyncClient], Awaitable[dict]]


@dataclass
class Result:
    name: str
    concurrency: int
    unit: str
    ok: int
    errors: int
    seconds: float
    rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    extra_p50_ms: dict[str, float | None] = field(default_factory=dict)
    cpu_pct: float | None = None
    cpu_ms_per_op: float | None = None
    peak_rss_mb: float | None = None
    error_samples: list[str] = field(default_factory=list)
    # completions (correct) within the recorded window / its length: a throughput that a few stalled
    # operations do not stretch, as they stretch `seconds` (which lasts until the last operation started ends)
    window_rate: float | None = None
    stalled: int = 0  # operations that took more than STALLED_SECONDS
    cpu_pct_by: dict[str, float] = field(default_factory=dict)  # with a CpuMeter: per process group


async def sse(response: httpx.Response) -> AsyncIterator[tuple[str, str, float]]:
    """(event, data, receive time) of each complete SSE event."""
    name, data = "", []
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and (name or data):
            yield name, "\n".join(data), time.time()
            name, data = "", []


@contextmanager
def no_collections() -> Iterator[None]:
    """No garbage collection in the load generator while it measures: its pauses (up to 90 ms with CPython's
    defaults and a thousand streams) would be timed as the server's. Collected once afterwards."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


class RawSSE:
    """One SSE request on a connection of its own, read without an HTTP library.

    With hundreds of streams open, httpx and h11 (Python per line and per chunk) took more of the machine
    than the server did, and the delays measured were mostly the load generator's own. This reads the
    chunked body in as few steps as it can and splits events on blank lines.

        async with RawSSE(url, "POST", "/runs/stream", body) as r:
            check(r.status_code == 200, ...)
            async for name, data, received in r.events(): ...
    """

    def __init__(self, url: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                 timeout: float = 60.0):
        self.target, self.timeout = httpx.URL(url), timeout
        self.method, self.path, self.body, self.headers = method, path, body, headers or {}
        self.status_code = 0
        self.response_headers: dict[str, str] = {}

    async def __aenter__(self) -> "RawSSE":
        host, port = self.target.host, self.target.port or 80
        self.reader, self.writer = await asyncio.open_connection(host, port, limit=2**22)
        # Bytes are stamped as they arrive (the loop hands them to the reader), not when this task gets its turn:
        # with hundreds of streams, the other readers' parsing would otherwise count as the server's delay. All
        # that arrived before this task reads it gets the latest stamp: an event is never timed as earlier.
        feed, self.arrived = self.reader.feed_data, 0.0

        def stamped(data: bytes) -> None:
            self.arrived = time.time()
            feed(data)

        self.reader.feed_data = stamped  # type: ignore[method-assign]
        payload = json.dumps(self.body).encode() if self.body is not None else b""
        head = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream",
                "Connection: close", *(f"{k}: {v}" for k, v in self.headers.items())]
        if self.body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        self.writer.write("\r\n".join(head).encode() + b"\r\n\r\n" + payload)
        self.status_code = int((await self.reader.readline()).split()[1])
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            self.response_headers[name.strip().lower()] = value.strip()
        return self

    async def __aexit__(self, *exc) -> None:
        self.writer.close()

    async def _body(self) -> AsyncIterator[bytes]:
        """The body's pieces; a TimeoutError when the server says nothing for `timeout` seconds."""
        chunked = self.response_headers.get("transfer-encoding") == "chunked"
        while True:
            async with asyncio.timeout(self.timeout):
                if not chunked:
                    data = await self.reader.read(2**16)
                elif size := int((await self.reader.readline()).split(b";")[0], 16):
                    data = (await self.reader.readexactly(size + 2))[:-2]
                else:
                    data = b""
            if not data:
                return
            yield data

    async def events(self) -> AsyncIterator[tuple[str, str, float]]:
        """(event, data, receive time) of each complete event, as sse() gives them."""
        rest = b""
        async for data in self._body():
            received = self.arrived
            # lines may end in CRLF (the official server's): as LF, a CR left at a piece's end included
            *frames, rest = (rest + data).replace(b"\r\n", b"\n").split(b"\n\n")
            for frame in frames:
                name, lines = "", []
                for line in frame.decode().split("\n"):
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        lines.append(line[5:].strip())
                if name or lines:
                    yield name, "\n".join(lines), received


async def no_setup(_: httpx.AsyncClient) -> dict:
    return {}


async def run_scenario(
    client: httpx.AsyncClient,
    probe: ServerProbe,
    name: str,
    concurrency: int,
    op: Op,
    *,
    setup: Setup = no_setup,
    seconds: float = 6.0,
    warmup: float = 1.0,
    max_ops: int = 20_000,
    unit: str = "runs/s",
    weight: int = 1,
    meter: CpuMeter | None = None,
) -> Result:
    """Run `op` in a loop from `concurrency` clients: `warmup` seconds unrecorded, then `seconds` recorded
    (or `max_ops` operations, whichever comes first). `weight` is requests per operation, for rates.
    With a `meter`, the CPU use of its process groups over the recorded window."""
    states = await asyncio.gather(*(setup(client) for _ in range(concurrency)))
    latencies: list[float] = []
    extras: dict[str, list[float]] = {}
    errors: list[str] = []
    finished: list[float] = []
    t_start = time.perf_counter()
    measure_from, deadline = t_start + warmup, t_start + warmup + seconds
    cpu0: list[float] = []
    snap0: list[dict[str, Any]] = []
    started = 0

    async def mark_start() -> None:
        await asyncio.sleep(warmup)
        cpu0.append(probe.cpu_seconds())
        if meter:
            snap0.append(meter.snapshot())
        probe.window_peak_rss = 0

    async def worker(state: dict) -> None:
        nonlocal started
        while True:
            t0 = time.perf_counter()
            if t0 >= deadline or started >= max_ops:
                return
            recorded = t0 >= measure_from
            started += recorded
            try:
                extra = await op(client, state)
            except (CheckFailed, httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError, KeyError, TypeError,
                    IndexError) as exc:
                if recorded:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            finished.append(time.perf_counter())
            if recorded:
                latencies.append((time.perf_counter() - t0) * 1000)
                for key, value in (extra or {}).items():
                    extras.setdefault(key, []).append(value)

    marker = asyncio.create_task(mark_start())
    await asyncio.gather(*(worker(s) for s in states))
    elapsed = max(time.perf_counter() - measure_from, 1e-9)
    await marker
    cpu = probe.cpu_seconds() - cpu0[0] if probe.root else None
    cpu_by = CpuMeter.percent(snap0[0], meter.snapshot()) if meter else {}
    ok = len(latencies)
    in_window = sum(measure_from <= t <= deadline for t in finished)
    window = max(min(deadline, measure_from + elapsed) - measure_from, 1e-9)
    return Result(
        name=name,
        concurrency=concurrency,
        unit=unit,
        ok=ok,
        errors=len(errors),
        seconds=round(elapsed, 2),
        rate=round(ok * weight / elapsed, 1),
        p50_ms=_r(pct(latencies, 0.50)),
        p95_ms=_r(pct(latencies, 0.95)),
        p99_ms=_r(pct(latencies, 0.99)),
        extra_p50_ms={k: _r(pct(v, 0.50)) for k, v in extras.items()},
        cpu_pct=None if cpu is None else round(100 * cpu / elapsed, 1),
        cpu_ms_per_op=None if cpu is None or not ok else round(1000 * cpu / (ok * weight), 2),
        peak_rss_mb=round(probe.window_peak_rss / 2**20, 1) if probe.root else None,
        error_samples=sorted(set(errors))[:3],
        cpu_pct_by=cpu_by,
        window_rate=round(in_window * weight / window, 1),
        stalled=sum(ms > STALLED_SECONDS * 1000 for ms in latencies),
    )


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


# --- operations --------------------------------------------------------------------------------


def tag() -> str:
    return f"bench-{uuid.uuid4().hex[:12]}"


def ok_json(r: httpx.Response) -> Any:
    check(r.status_code in (200, 201), f"{r.request.method} {r.request.url.path} -> {r.status_code} {r.text[:120]}")
    return r.json()


def check_echo(values: Any, text: str) -> None:
    check(isinstance(values, dict), f"output is not an object: {str(values)[:120]}")
    last = values["messages"][-1]
    if not isinstance(last, dict):  # a message object, when the graph is invoked in-process
        last = {"type": last.type, "content": last.content}
    check(last.get("type") == "ai" and last.get("content") == f"echo: {text}", f"wrong echo output: {str(last)[:120]}")


def echo_input(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


async def stateless_wait(client: httpx.AsyncClient, _: dict) -> None:
    text = tag()
    r = await client.post("/runs/wait", json={"assistant_id": "echo", "input": echo_input(text)})
    check_echo(ok_json(r), text)


async def stateless_burn(client: httpx.AsyncClient, _: dict) -> None:
    """The 5-step graph on no thread, each step spinning the CPU (BURN_CONFIG): CPU-bound work for the workers."""
    body = {"assistant_id": "slow", "input": {}, "config": BURN_CONFIG}
    out = ok_json(await client.post("/runs/wait", json=body))
    check(isinstance(out, dict) and out.get("steps") == STEPS, f"wrong steps: {str(out)[-120:]}")


async def new_thread(client: httpx.AsyncClient) -> dict:
    thread = ok_json(await client.post("/threads", json={}))
    return {"thread_id": thread["thread_id"], "steps": 0}


async def threaded_slow(client: httpx.AsyncClient, state: dict) -> None:
    """5-step graph on the client's own thread: steps accumulate, 5 more per run."""
    prev, state["steps"] = state["steps"], None  # unknown until this run answers correctly
    body = {"assistant_id": "slow", "input": {}, "config": SLOW_CONFIG}
    out = ok_json(await client.post(f"/threads/{state['thread_id']}/runs/wait", json=body))
    steps = out["steps"]
    check(steps[-5:] == STEPS and len(steps) % 5 == 0, f"wrong steps: {str(steps)[-120:]}")
    check(prev is None or len(steps) == prev + 5, f"expected {prev} + 5 steps on the thread, got {len(steps)}")
    state["steps"] = len(steps)


async def stream_echo(client: httpx.AsyncClient, _: dict) -> dict[str, float]:
    """POST /runs/stream: time to the first complete SSE event; the values must end with the echo."""
    text = tag()
    body = {"assistant_id": "echo", "input": echo_input(text), "stream_mode": ["values"]}
    t0 = time.perf_counter()
    first: float | None = None
    events: list[tuple[str, str]] = []
    async with client.stream("POST", "/runs/stream", json=body) as r:
        check(r.status_code == 200, f"stream -> {r.status_code}")
        async for name, data, _ in sse(r):
            first = first or time.perf_counter()
            events.append((name, data))
    check(first is not None and events[0][0] == "metadata", f"first event is not metadata: {events[:1]}")
    check(not any(n == "error" for n, _ in events), f"error event: {events[-1]}")
    values = [json.loads(d) for n, d in events if n == "values"]
    check(bool(values), "no values event")
    check_echo(values[-1], text)
    return {"first_event": (first - t0) * 1000}


async def background_join(client: httpx.AsyncClient, state: dict) -> dict[str, float]:
    """Create a background run on the client's thread, then join it."""
    text = tag()
    t0 = time.perf_counter()
    body = {"assistant_id": "echo", "input": echo_input(text)}
    run = ok_json(await client.post(f"/threads/{state['thread_id']}/runs", json=body))
    check(run.get("status") in ("pending", "running", "success"), f"run status {run.get('status')}")
    created = time.perf_counter()
    out = ok_json(await client.get(f"/threads/{state['thread_id']}/runs/{run['run_id']}/join"))
    check_echo(out, text)
    return {"create": (created - t0) * 1000, "join": (time.perf_counter() - created) * 1000}


async def _timed(results: dict[str, float], key: str, call: Awaitable[httpx.Response]) -> httpx.Response:
    t0 = time.perf_counter()
    r = await call
    results[key] = (time.perf_counter() - t0) * 1000
    return r


async def assistant_crud(client: httpx.AsyncClient, _: dict) -> dict[str, float]:
    t: dict[str, float] = {}
    name = tag()
    a = ok_json(await _timed(t, "create", client.post("/assistants", json={"graph_id": "echo", "name": name})))
    check(a.get("graph_id") == "echo" and a.get("name") == name, f"created: {str(a)[:120]}")
    path = f"/assistants/{a['assistant_id']}"
    got = ok_json(await _timed(t, "get", client.get(path)))
    check(got.get("assistant_id") == a["assistant_id"] and got.get("name") == name, "get returned another assistant")
    patched = ok_json(await _timed(t, "patch", client.patch(path, json={"metadata": {"bench": name}})))
    check((patched.get("metadata") or {}).get("bench") == name, f"patch: {str(patched)[:120]}")
    r = await _timed(t, "delete", client.delete(path))
    check(r.status_code in (200, 202, 204), f"delete -> {r.status_code}")
    return t


async def thread_crud(client: httpx.AsyncClient, _: dict) -> dict[str, float]:
    t: dict[str, float] = {}
    name = tag()
    th = ok_json(await _timed(t, "create", client.post("/threads", json={"metadata": {"bench": name}})))
    check((th.get("metadata") or {}).get("bench") == name, f"created: {str(th)[:120]}")
    path = f"/threads/{th['thread_id']}"
    got = ok_json(await _timed(t, "get", client.get(path)))
    check(got.get("thread_id") == th["thread_id"], "get returned another thread")
    patched = ok_json(await _timed(t, "patch", client.patch(path, json={"metadata": {"step": "patched"}})))
    check((patched.get("metadata") or {}).get("step") == "patched", f"patch: {str(patched)[:120]}")
    r = await _timed(t, "delete", client.delete(path))
    check(r.status_code in (200, 202, 204), f"delete -> {r.status_code}")
    return t


async def store_namespace(_: httpx.AsyncClient) -> dict:
    return {"namespace": ["bench", tag()]}  # a client's own: its searches see its items only


async def store_ops(client: httpx.AsyncClient, state: dict) -> dict[str, float]:
    t: dict[str, float] = {}
    key, namespace = tag(), state["namespace"]
    value = {"text": f"note {key}", "tag": key}
    r = await _timed(t, "put", client.put("/store/items", json={"namespace": namespace, "key": key, "value": value}))
    check(r.status_code in (200, 204), f"put -> {r.status_code} {r.text[:120]}")
    got = ok_json(await _timed(t, "get", client.get("/store/items", params={"namespace": ".".join(namespace), "key": key})))
    check((got or {}).get("value") == value, f"get: {str(got)[:120]}")
    found = ok_json(await _timed(t, "search", client.post(
        "/store/items/search", json={"namespace_prefix": namespace, "filter": {"tag": key}, "limit": 10})))
    check([i["key"] for i in found["items"]] == [key], f"search for {key}: {str(found)[:120]}")
    return t


# --- the benchmark -----------------------------------------------------------------------------


async def run_all(url: str, pid: int | None, quick: bool = False, log: Callable[[str], None] = print,
                  groups: dict[str, Callable[[], list[psutil.Process]]] | None = None) -> dict:
    """Every scenario in turn; with `groups`, each one's CPU use per group of processes (CpuMeter)."""
    probe = ServerProbe(pid)
    s = 2.0 if quick else 6.0
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        ok_json(await client.get("/ok"))
        idle_rss, cpu0 = probe.rss(), probe.cpu_seconds()
        await asyncio.sleep(3)  # an idle server should cost (almost) nothing
        idle_cpu = (probe.cpu_seconds() - cpu0) / 3
        probe.start()
        plan: list[tuple[str, int, Op, dict[str, Any]]] = [
            *[("stateless runs/wait echo", c, stateless_wait, {}) for c in (1, 8, 32)],
            *[("threaded runs/wait slow 5-step", c, threaded_slow, {"setup": new_thread, "seconds": s * 1.35}) for c in (1, 32)],
            *[("stateless runs/stream echo", c, stream_echo, {"seconds": s * 0.75}) for c in (1, 8)],
            *[("background create + join", c, background_join, {"setup": new_thread, "seconds": s * 0.75}) for c in (1, 8)],
            ("assistant CRUD (4 requests)", 8, assistant_crud, {"unit": "req/s", "weight": 4, "seconds": s * 0.75}),
            ("thread CRUD (4 requests)", 8, thread_crud, {"unit": "req/s", "weight": 4, "seconds": s * 0.75}),
            ("store put+get+search (3 requests)", 8, store_ops,
             {"setup": store_namespace, "unit": "req/s", "weight": 3, "seconds": s * 0.75}),
        ]
        results: list[Result] = []
        for name, conc, op, kw in plan:
            kw.setdefault("seconds", s)
            res = await run_scenario(client, probe, name, conc, op, warmup=0.5 if quick else 1.0,
                                     meter=CpuMeter(groups) if groups else None, **kw)
            log(format_row(res))
            results.append(res)
        await probe.stop()
    return {
        "url": url,
        "idle_rss_mb": round(idle_rss / 2**20, 1) if pid else None,
        "idle_cpu_pct": round(100 * idle_cpu, 1) if pid else None,
        "peak_rss_mb": round(probe.peak_rss / 2**20, 1) if pid else None,
        "results": [asdict(r) for r in results],
    }


async def soak(url: str, pid: int | None, runs: int = 10_000, concurrency: int = 16, every: int = 1_000,
               log: Callable[[str], None] = print) -> dict:
    """`runs` stateless echo runs/wait from `concurrency` clients, as fast as the server answers, each checked;
    the server's RSS is sampled before the first and after every `every` completed runs. A server that leaks
    per run grows between the middle and the end; one that does not levels off after its caches fill."""
    probe = ServerProbe(pid)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    samples: list[dict[str, float]] = []
    latencies: list[float] = []
    errors: list[str] = []
    issued = done = 0
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        ok_json(await client.get("/ok"))
        t0, cpu0 = time.perf_counter(), probe.cpu_seconds()

        def sample() -> None:
            samples.append({"runs": done, "rss_mb": round(probe.rss() / 2**20, 1),
                            "seconds": round(time.perf_counter() - t0, 1)})

        async def client_loop() -> None:
            nonlocal issued, done
            while issued < runs:
                issued += 1
                t = time.perf_counter()
                try:
                    await stateless_wait(client, {})
                except (CheckFailed, httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError, KeyError, TypeError,
                    IndexError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                else:
                    latencies.append((time.perf_counter() - t) * 1000)
                done += 1
                if done % every == 0 or done == runs:
                    sample()
                    if done % (every * 5) == 0 or done == runs:
                        log(f"soak: {done} runs, server RSS {samples[-1]['rss_mb']} MB, {samples[-1]['seconds']} s")

        sample()
        log(f"soak: 0 runs, server RSS {samples[-1]['rss_mb']} MB")
        probe.start()
        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        await probe.stop()
        elapsed = time.perf_counter() - t0
        cpu = probe.cpu_seconds() - cpu0
    by_runs = {s["runs"]: s["rss_mb"] for s in samples}
    half = runs // 2 // every * every
    at_half, at_end = by_runs.get(half), by_runs.get(runs)
    return {
        "runs": runs,
        "concurrency": concurrency,
        "ok": len(latencies),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:3],
        "seconds": round(elapsed, 1),
        "rate": round(len(latencies) / elapsed, 1),
        "p50_ms": _r(pct(latencies, 0.50)),
        "p99_ms": _r(pct(latencies, 0.99)),
        "stalled": sum(ms > STALLED_SECONDS * 1000 for ms in latencies),
        "cpu_ms_per_op": round(1000 * cpu / runs, 2) if pid else None,
        "half": half,
        "rss_start_mb": by_runs.get(0),
        "rss_half_mb": at_half,
        "rss_end_mb": at_end,
        "growth_half_to_end_mb": None if at_half is None or at_end is None else round(at_end - at_half, 1),
        "peak_rss_mb": round(probe.peak_rss / 2**20, 1) if pid else None,
        "samples": samples,
    }


HEADER = (
    f"{'scenario':34} {'conc':>4} {'ok':>6} {'err':>4} {'rate':>9} {'unit':6} "
    f"{'p50ms':>7} {'p95ms':>7} {'p99ms':>7} {'cpu%':>6} {'cpu ms/op':>9} {'rssMB':>6}  extra p50 ms"
)


def format_row(r: Result) -> str:
    f = lambda v, spec=".1f": "-" if v is None else format(v, spec)  # noqa: E731
    extra = " ".join(f"{k}={f(v)}" for k, v in r.extra_p50_ms.items())
    return (
        f"{r.name:34} {r.concurrency:>4} {r.ok:>6} {r.errors:>4} {r.rate:>9.1f} {r.unit:6} "
        f"{f(r.p50_ms):>7} {f(r.p95_ms):>7} {f(r.p99_ms):>7} {f(r.cpu_pct):>6} {f(r.cpu_ms_per_op, '.2f'):>9} "
        f"{f(r.peak_rss_mb):>6}  {extra}" + (f"\n    errors e.g.: {r.error_samples[0]}" if r.errors else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--pid", type=int, help="server pid, for CPU and RSS")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--quick", action="store_true", help="2 s per measurement instead of 6")
    parser.add_argument("--soak", type=int, metavar="N", help="then N stateless echo runs, sampling the server's RSS")
    args = parser.parse_args()
    print(HEADER)
    data = asyncio.run(run_all(args.url, args.pid, args.quick))
    print(f"server: idle CPU {data['idle_cpu_pct']} %, RSS idle {data['idle_rss_mb']} MB, peak {data['peak_rss_mb']} MB")
    if args.soak:
        data["soak"] = asyncio.run(soak(args.url, args.pid, args.soak))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(data, fh, indent=2)


if __name__ == "__main__":
    main()
