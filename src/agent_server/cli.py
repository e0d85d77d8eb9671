"""agent-server dev | serve | worker | orchestrator | executor | migrate | dockerfile"""
from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from . import observability
from .config import Settings, load_settings
from .errors import ConfigError

log = logging.getLogger("agent_server")
CLOSE_SECONDS = 15.0  # how long a process's pool, broker (and embedded database) get to close when it stops


def settle_gc() -> None:
    """Once a server process has started (libraries, graphs, its runtime loaded): what is alive now lives as long as
    the process, so it is frozen out of every later collection; and the youngest generation is collected every
    50,000 allocations instead of 700. With 1,000 open streams, CPython's default spent some 2 s of 17 in
    collections, with pauses up to 375 ms on every stream (bench/RESULTS.md, many open streams)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)


def _port(value: str) -> int:
    if not str(value).isdigit() or not 0 < int(value) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (1-65535)")
    return int(value)


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {host} is already in use") from None
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


async def _serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    from .api.app import create_app
    from .runtime import Runtime

    rt = await Runtime.start(settings)
    try:
        app = create_app(settings, runtime=rt)
        # An idle keep-alive connection is closed after 5 s; a request's head may take at most 64 KiB (h11)
        # and AGENT_SERVER_BODY_TIMEOUT_SECS to arrive (uvicorn has no such limit of its own); the body's
        # size and read timeout are BodyLimitMiddleware's (api/limits.py).
        from .api.limits import head_timeout_protocol

        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, lifespan="on",
            timeout_keep_alive=5, h11_max_incomplete_event_size=64 * 1024,
            http=head_timeout_protocol(settings.body_timeout_secs),
        )
        loop = asyncio.get_running_loop()

        class Server(uvicorn.Server):
            async def startup(self, sockets=None) -> None:
                await super().startup(sockets)
                settle_gc()  # once its lifespan (the queue, webhooks) and protocol modules are loaded too

            def handle_exit(self, sig, frame) -> None:
                # Open streams end cleanly first; else uvicorn would wait on them forever.
                loop.call_soon_threadsafe(rt.broker.end_subscriptions)
                super().handle_exit(sig, frame)

        # uvicorn re-raises the signal that stopped it once it has shut down; let that signal find a
        # handler that does nothing, so that we still close the runtime (and the embedded database).
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: None)
        log.info("Agent Server listening on http://%s:%s", host, port)
        await Server(config).serve()
        return 1 if getattr(app.state, "failed", False) else 0
    finally:
        await _close(rt)


async def _close(rt) -> None:
    """A server process's last step, bounded as the queue's stop is: a connection stuck on its way out must not
    hold the process."""
    try:
        await asyncio.wait_for(rt.close(), CLOSE_SECONDS)
        log.info("closed")
    except TimeoutError:
        log.error("closing the database pool and broker took over %.0fs; exiting without waiting further", CLOSE_SECONDS)


async def _worker(settings: Settings, executors: list[str] | None = None, local_executors: int = 0) -> int:
    """A queue worker; with `executors` (addresses) or `local_executors` (how many to start here), an
    orchestrator that dispatches the runs to executors (distributed mode)."""
    from .graphs import GraphRegistry
    from .worker.consumer import QueueWorker
    from .runtime import Runtime

    distributed = executors is not None or local_executors
    if distributed:
        from .worker import wire
        from .worker.orchestrator import LocalExecutors, Orchestrator

        if local_executors and not os.environ.get(wire.SECRET_ENV):  # on this host only: a secret of its own
            import secrets

            os.environ[wire.SECRET_ENV] = secrets.token_urlsafe(32)
        shared_secret = wire.secret()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    graphs = GraphRegistry.load(settings.graphs, settings.base_dir, settings.dependencies)  # broken: exit now
    delay = 1.0
    while True:  # a worker outlives a database or Redis that is not up yet, or another's long migration
        try:
            rt = await Runtime.start(settings, graphs)
            break
        except Exception as exc:
            if not _transient(exc):
                raise
            log.warning("cannot start (%s: %s); retrying in %.0fs", type(exc).__name__, exc, delay)
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return
            except asyncio.TimeoutError:
                delay = min(delay * 2, 30)
    local = None
    if distributed:
        if local_executors:  # `worker --executors N`: on this host, supervised by this process
            local = LocalExecutors(local_executors, settings.config_path)
            executors = await local.start()
        timeout = float(os.environ.get("AGENT_SERVER_EXECUTOR_TIMEOUT_SECS", "10"))
        worker = Orchestrator(rt, executors, shared_secret, timeout)
    else:
        worker = QueueWorker(rt)
    try:
        await worker.start()
        settle_gc()
        if executors is not None:
            log.info("orchestrator %s dispatching to executors %s", worker.worker_id, ", ".join(executors))
        else:
            log.info("worker %s running up to %d runs at once", worker.worker_id, worker.concurrency)
        if os.environ.get("AGENT_SERVER_METRICS_PORT"):  # no HTTP API here: its own /metrics for Prometheus
            observability.serve_metrics(_port(os.environ["AGENT_SERVER_METRICS_PORT"]))
        waits = [asyncio.create_task(stop.wait()), asyncio.create_task(worker.failed.wait())]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
        log.info("worker %s stopping", worker.worker_id)
        await worker.stop(drain_seconds=settings.drain_timeout_secs)
        log.info("worker %s stopped; closing its connections", worker.worker_id)
        return 1 if worker.failed.is_set() else 0
    finally:
        if local is not None:
            await local.stop()
        await _close(rt)


async def _executor(settings: Settings, host: str, port: int, slots: int) -> int:
    """An executor of distributed mode: runs the graph code of the runs orchestrators send it."""
    from .graphs import GraphRegistry
    from .worker import wire
    from .worker.executor_server import ExecutorServer

    shared_secret = wire.secret()
    if not settings.database_uri:
        raise ConfigError("an executor needs DATABASE_URI: it writes the checkpoints of the runs it executes")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    graphs = GraphRegistry.load(settings.graphs, settings.base_dir, settings.dependencies)
    server = ExecutorServer(settings, graphs, slots, shared_secret)
    try:
        bound = await server.start(host, port)
        settle_gc()
        log.info("executor %s listening on %s:%d with %d slots%s", server.executor_id, host, bound, slots,
                 " (TLS)" if server.tls else "")
        await stop.wait()
        log.info("executor %s stopping", server.executor_id)
    finally:
        await server.stop(grace=settings.drain_timeout_secs)
    return 0


def _transient(exc: BaseException | None) -> bool:
    """A failure to reach PostgreSQL or Redis, which goes away by itself; not a bad config or graph.

    Connection failures reach us as a ConfigError (for a one-line message) that keeps its cause as context."""
    import psycopg
    from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError

    from .storage.database import MigrationLockTimeout

    transient = (psycopg.OperationalError, RedisConnectionError, RedisTimeoutError, OSError, MigrationLockTimeout)
    while exc is not None:
        if isinstance(exc, transient):  # psycopg_pool.PoolTimeout is an OperationalError
            return True
        exc = exc.__context__
    return False


async def _migrate(settings: Settings) -> None:
    from .storage import database

    pool = await database.connect(settings.database_uri, settings.data_dir, max_size=2)
    try:
        await database.migrate(pool)
    finally:
        await pool.close()
    log.info("database schema is up to date")


def _run(coro):
    """Run on uvloop when it is installed (it is with uvicorn[standard]): a faster event loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agent-server", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("dev", "run the server on this machine (embedded PostgreSQL when DATABASE_URI is unset)"),
        ("serve", "run the server with production settings (needs DATABASE_URI or --embedded)"),
        ("worker", "run a queue worker only (no HTTP)"),
        ("orchestrator", "distributed mode: claim runs and dispatch them to executors (no graph code)"),
        ("executor", "distributed mode: execute the runs orchestrators dispatch (gRPC server)"),
        ("migrate", "apply the database schema and exit"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", default="langgraph.json", help="path to langgraph.json")
        if name in ("dev", "serve"):
            p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1" if name == "dev" else "0.0.0.0"))
            p.add_argument("--port", type=_port, default=os.environ.get("PORT", 2024 if name == "dev" else 8000))
            p.add_argument("--no-queue", action="store_true", help="API only: leave runs to separate workers")
        if name == "serve":
            p.add_argument("--embedded", action="store_true", help="use the embedded PostgreSQL")
        if name == "worker":
            p.add_argument("--executors", type=int, default=0, metavar="N",
                           help="distributed mode on this host: an orchestrator and N executor processes")
        if name == "orchestrator":
            p.add_argument("--executor", action="append", metavar="HOST:PORT",
                           help="an executor's address (repeat it; default: AGENT_SERVER_EXECUTORS, comma-separated)")
        if name == "executor":
            p.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
            p.add_argument("--port", type=_port, default=os.environ.get("AGENT_SERVER_EXECUTOR_PORT", 50051))
            p.add_argument("--slots", type=int, help="runs at once (default: N_JOBS_PER_WORKER)")
        p.add_argument("--data-dir", help="where the embedded PostgreSQL keeps its data (default: .agent_server beside the config)")
    p = sub.add_parser("dockerfile", help="write the Dockerfile of this project's image (built on Agent Server's)")
    p.add_argument("save_path", type=Path, help="where to write it, e.g. Dockerfile")
    p.add_argument("--config", "-c", default="langgraph.json", help="path to langgraph.json")
    p.add_argument("--base-image", help="Agent Server's image to build on (default: agent-server:<this version>)")
    args = parser.parse_args(argv)
    observability.setup_logging(json_default=args.command in ("serve", "worker", "orchestrator", "executor"))
    stop_tracing = None
    try:
        settings = load_settings(args.config)
        if args.command == "dockerfile":
            from . import dockerfile

            for path in dockerfile.write(settings, args.save_path, args.base_image or dockerfile.DEFAULT_BASE_IMAGE):
                print(f"wrote {path}")
            return 0
        stop_tracing = observability.setup_tracing()  # after the config's env, which may set OTEL_*
        if args.data_dir:
            settings.data_dir = Path(args.data_dir).resolve()
        if args.command == "serve" and not settings.database_uri and not args.embedded:
            raise ConfigError("serve needs DATABASE_URI (or --embedded for the embedded PostgreSQL)")
        if args.command in ("dev", "serve"):
            settings.run_queue = not args.no_queue
            _check_port(args.host, args.port)
            return _run(_serve(settings, args.host, args.port)) or 0
        elif args.command == "worker":
            return _run(_worker(settings, local_executors=args.executors)) or 0
        elif args.command == "orchestrator":
            executors = args.executor or [a for a in os.environ.get("AGENT_SERVER_EXECUTORS", "").split(",") if a.strip()]
            if not executors:
                raise ConfigError("an orchestrator needs executors: --executor HOST:PORT or AGENT_SERVER_EXECUTORS")
            return _run(_worker(settings, executors=[a.strip() for a in executors])) or 0
        elif args.command == "executor":
            return _run(_executor(settings, args.host, args.port, args.slots or settings.n_jobs_per_worker)) or 0
        else:
            asyncio.run(_migrate(settings))
    except ConfigError as exc:  # one line, whatever the cause's own formatting
        print(f"agent-server: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        if stop_tracing:
            stop_tracing()  # sends the spans still buffered
    return 0


if __name__ == "__main__":
    sys.exit(main())
