"""`agent-server` as a user runs it: every way it can fail to start ends in one clear line."""
from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import psycopg
import pytest

from conftest import AGENT_SERVER, CONFIG, create_database, drop_database, free_port


def agent_server(*args: str, env: dict | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URI", "POSTGRES_URI")}
    return subprocess.run(
        [*AGENT_SERVER, *args], env={**base, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one line the CLI ends with when it cannot start."""
    assert result.returncode != 0, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("agent-server"), result.stderr
    return last


def write_config(folder: Path, graphs: dict, **extra) -> Path:
    path = folder / "langgraph.json"
    path.write_text(json.dumps({"graphs": graphs, **extra}))
    return path


@pytest.fixture
def db_env(database_uri) -> dict:
    return {"DATABASE_URI": database_uri}


def test_missing_config_is_a_clear_error(tmp_path, db_env):
    line = error_line(agent_server("dev", "--config", str(tmp_path / "nope.json"), env=db_env))
    assert "nope.json" in line and "config file not found" in line


def test_invalid_json_config_names_the_file(tmp_path, db_env):
    (tmp_path / "langgraph.json").write_text('{"graphs": ')
    line = error_line(agent_server("dev", "--config", str(tmp_path / "langgraph.json"), env=db_env))
    assert "langgraph.json" in line and "invalid JSON" in line


def test_invalid_field_names_the_field_and_the_file(tmp_path, db_env):
    config = write_config(tmp_path, {"a": 5})
    line = error_line(agent_server("dev", "--config", str(config), "--port", str(free_port()), env=db_env))
    assert str(config) in line and "graphs.a" in line


def test_graph_that_fails_to_import_names_the_graph_and_the_cause(tmp_path, db_env):
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom at import')\n")
    config = write_config(tmp_path, {"broken": "./broken.py:graph"})
    line = error_line(agent_server("dev", "--config", str(config), "--port", str(free_port()), env=db_env))
    assert "graph 'broken'" in line and "RuntimeError: boom at import" in line


def test_graph_file_that_does_not_exist_names_the_graph(tmp_path, db_env):
    config = write_config(tmp_path, {"ghost": "./ghost.py:graph"})
    line = error_line(agent_server("dev", "--config", str(config), "--port", str(free_port()), env=db_env))
    assert "graph 'ghost'" in line and "not found" in line


def test_unreachable_database_is_a_clear_error():
    closed = free_port()  # nothing listens there
    env = {"DATABASE_URI": f"postgresql://postgres@127.0.0.1:{closed}/nothing"}
    line = error_line(agent_server("dev", "--config", str(CONFIG), "--port", str(free_port()), env=env))
    assert "cannot connect to PostgreSQL" in line and str(closed) in line


def test_port_in_use_is_a_clear_error(db_env):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = error_line(agent_server("dev", "--config", str(CONFIG), "--port", str(port), env=db_env))
    assert f"port {port}" in line and "already in use" in line


def test_port_that_is_not_a_port_is_rejected():
    result = agent_server("dev", "--config", str(CONFIG), "--port", "70000")
    assert result.returncode == 2 and "not a port number" in result.stderr


def test_serve_without_database_uri_or_embedded_fails_clearly():
    line = error_line(agent_server("serve", "--config", str(CONFIG), "--port", str(free_port())))
    assert "DATABASE_URI" in line and "--embedded" in line


def test_migrate_creates_the_schema_and_exits(postgres_server):
    uri = create_database(postgres_server)
    try:
        result = agent_server("migrate", "--config", str(CONFIG), env={"DATABASE_URI": uri})
        assert result.returncode == 0, result.stderr
        with psycopg.connect(uri) as conn:
            tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"assistant", "thread", "run", "checkpoints", "store"} <= tables
    finally:
        drop_database(postgres_server, uri)


def test_migrate_with_unreachable_database_fails_clearly():
    env = {"DATABASE_URI": f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"}
    assert "cannot connect to PostgreSQL" in error_line(agent_server("migrate", "--config", str(CONFIG), env=env))


def test_a_worker_with_a_graph_that_fails_to_import_exits_instead_of_retrying(tmp_path):
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    (tmp_path / "langgraph.json").write_text('{"graphs": {"broken": "./broken.py:graph"}}')
    proc = subprocess.run(
        [*AGENT_SERVER, "worker", "--config", str(tmp_path / "langgraph.json")],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "DATABASE_URI": "postgresql://postgres@127.0.0.1:1/none"},
    )
    assert proc.returncode == 2
    assert "broken" in proc.stderr and "boom" in proc.stderr


def test_the_data_dir_option_puts_the_embedded_database_there(tmp_path):
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URI", "POSTGRES_URI")}
    proc = subprocess.run(
        [*AGENT_SERVER, "migrate", "--config", str(CONFIG), "--data-dir", str(data)],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert (data / "pgdata" / "PG_VERSION").exists()
