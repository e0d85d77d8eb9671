"""langgraph.json as LangGraph users write it."""
from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path

import pytest

from agent_server.config import load_settings
from agent_server.errors import ConfigError

GRAPH = "from langgraph.graph import START, MessagesState, StateGraph\n"


def write_config(folder: Path, **raw) -> Path:
    path = folder / "langgraph.json"
    path.write_text(json.dumps({"graphs": {"g": "./g.py:graph"}, **raw}))
    return path


def test_unknown_key_is_a_warning_and_image_keys_are_silent(tmp_path, caplog):
    config = write_config(tmp_path, mystery=1, python_version="3.12", dockerfile_lines=[], pip_installer="uv")
    with caplog.at_level(logging.WARNING, logger="agent_server.config"):
        settings = load_settings(config)
    assert settings.graphs == {"g": "./g.py:graph"}
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "'mystery'" in warned and "python_version" not in warned and "pip_installer" not in warned


def test_official_keys_we_do_not_implement_are_named_as_unsupported(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="agent_server.config"):
        load_settings(write_config(tmp_path, encryption={"path": "./e.py:enc"}))
    assert "'encryption' is not supported" in caplog.text


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"graphs": {}}, "'graphs'"),
        ({"graphs": ["./g.py:graph"]}, "'graphs'"),
        ({"graphs": {"g": "no-colon"}}, "graphs.g"),
        ({"dependencies": "."}, "'dependencies'"),
        ({"dependencies": ["./missing_dir"]}, "dependencies"),
        ({"env": 5}, "'env'"),
        ({"env": "./missing.env"}, "'env'"),
        ({"store": []}, "'store'"),
        ({"http": "x"}, "'http'"),
    ],
)
def test_invalid_config_names_the_field_and_the_file(tmp_path, raw, field):
    config = write_config(tmp_path, **raw)
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert str(config) in str(err.value) and field in str(err.value)


def test_graph_given_as_an_object_with_a_path(tmp_path):
    config = write_config(tmp_path, graphs={"g": {"path": "./g.py:graph", "description": "a graph"}})
    assert load_settings(config).graphs == {"g": "./g.py:graph"}


def test_env_as_a_mapping_sets_the_environment_without_overriding_it(tmp_path, monkeypatch):
    fresh, preset = f"AS_TEST_{uuid.uuid4().hex}", f"AS_TEST_{uuid.uuid4().hex}"
    monkeypatch.setenv(preset, "from the shell")
    monkeypatch.delenv(fresh, raising=False)
    load_settings(write_config(tmp_path, env={fresh: "from config", preset: "from config"}))
    assert os.environ[fresh] == "from config" and os.environ[preset] == "from the shell"
    monkeypatch.delenv(fresh)


def test_env_as_a_path_reads_the_dotenv_file_beside_the_config(tmp_path, monkeypatch):
    name = f"AS_TEST_{uuid.uuid4().hex}"
    (tmp_path / "settings.env").write_text(f"{name}=hello\n# a comment\n")
    settings = load_settings(write_config(tmp_path, env="./settings.env"))
    assert settings.env == {name: "hello"} and os.environ[name] == "hello"
    monkeypatch.delenv(name)


def test_the_postgres_pool_size_follows_the_run_slots_unless_set_by_its_official_variable(tmp_path, monkeypatch):
    config = write_config(tmp_path)
    monkeypatch.setenv("N_JOBS_PER_WORKER", "100")
    monkeypatch.delenv("LANGGRAPH_POSTGRES_POOL_MAX_SIZE", raising=False)
    settings = load_settings(config)
    assert settings.pool_max_size == 210
    settings.run_queue = False  # `serve --no-queue`: no run slots of its own
    assert settings.pool_max_size == 10
    monkeypatch.setenv("LANGGRAPH_POSTGRES_POOL_MAX_SIZE", "40")
    assert load_settings(config).pool_max_size == 40
    for bad, says in (("1", "at least 2"), ("forty", "not a number")):
        monkeypatch.setenv("LANGGRAPH_POSTGRES_POOL_MAX_SIZE", bad)
        with pytest.raises(ConfigError, match=says):
            load_settings(config)
