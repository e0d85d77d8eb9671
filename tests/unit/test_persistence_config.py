"""checkpointer.backend / path / uri / serde and store.path in langgraph.json (and LS_DEFAULT_CHECKPOINTER_BACKEND,
LS_MONGODB_URI): how they are resolved and refused; checkpointer.serde honoured by the built-in saver; a custom
store given store.ttl."""
from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import pytest
from psycopg_pool import AsyncConnectionPool

from agent_server.config import load_settings
from agent_server.errors import ConfigError
from agent_server.persistence import make_serde, open_checkpointer, open_store
from agent_server.storage.checkpointer import PooledPostgresSaver
from agent_server.storage.savers import SqlCheckpointOps

STORE = Path(__file__).resolve().parents[1] / "persistence" / "memory_store.py"


@dataclasses.dataclass
class Note:
    text: str


def settings_with(folder: Path, **raw):
    path = folder / "langgraph.json"
    path.write_text(json.dumps({"graphs": {"g": "./g.py:graph"}, **raw}))
    return load_settings(path)


@pytest.fixture(autouse=True)
def _no_backend_env(monkeypatch):
    for name in ("LS_DEFAULT_CHECKPOINTER_BACKEND", "LS_MONGODB_URI", "MONGODB_URI"):
        monkeypatch.delenv(name, raising=False)


def test_backend_resolution(tmp_path, monkeypatch):
    assert settings_with(tmp_path).checkpointer["backend"] == "default"
    custom = settings_with(tmp_path, checkpointer={"path": "./saver.py:make"}).checkpointer
    assert custom["backend"] == "custom" and custom["path"] == "./saver.py:make"
    monkeypatch.setenv("LS_DEFAULT_CHECKPOINTER_BACKEND", "mongo")
    monkeypatch.setenv("LS_MONGODB_URI", "mongodb://db:27017/langgraph?replicaSet=rs0")
    mongo = settings_with(tmp_path).checkpointer
    assert mongo["backend"] == "mongo" and mongo["uri"] == "mongodb://db:27017/langgraph?replicaSet=rs0"
    # langgraph.json's backend wins over the environment's
    assert settings_with(tmp_path, checkpointer={"backend": "default"}).checkpointer["backend"] == "default"


@pytest.mark.parametrize("checkpointer, env, message", [
    ({"backend": "mongo"}, {}, "needs a MongoDB URI"),
    ({}, {"LS_DEFAULT_CHECKPOINTER_BACKEND": "redis"}, "LS_DEFAULT_CHECKPOINTER_BACKEND must be 'default' or 'mongo'"),
    ({"backend": "sqlite"}, {}, "checkpointer.backend must be one of default, mongo, custom"),
    ({"backend": "default", "path": "./s.py:f"}, {}, "goes with backend 'custom'"),
    ({"backend": "custom"}, {}, "goes with backend 'custom'"),
    ({"path": "saver.py"}, {}, "checkpointer.path must be './file.py:func' or 'module:func'"),
    ({"serde": {"allowed_msgpack_modules": "my_agent"}}, {}, "checkpointer.serde.allowed_msgpack_modules must be"),
    ({"serde": {"allowed_json_modules": [["ok"], []]}}, {}, "checkpointer.serde.allowed_json_modules must be"),
    ({"serde": {"pickle_fallback": "yes"}}, {}, "checkpointer.serde.pickle_fallback must be true or false"),
])
def test_bad_checkpointer_settings_are_refused(tmp_path, monkeypatch, checkpointer, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        settings_with(tmp_path, checkpointer=checkpointer)


def test_bad_store_path_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="store.path must be './file.py:func' or 'module:func'"):
        settings_with(tmp_path, store={"path": 3})


async def test_serde_settings_are_honoured_by_the_built_in_saver(tmp_path):
    serde = {"allowed_msgpack_modules": [[__name__, "Note"]], "pickle_fallback": False}
    settings = settings_with(tmp_path, checkpointer={"serde": serde})
    async with contextlib.AsyncExitStack() as stack:
        built, ops = await open_checkpointer(settings, AsyncConnectionPool("postgresql://unused", open=False), stack)
    assert isinstance(built, PooledPostgresSaver) and isinstance(ops, SqlCheckpointOps)
    assert built.serde.pickle_fallback is False
    assert built.serde.loads_typed(built.serde.dumps_typed(Note("kept"))) == Note("kept")  # allowed: revived
    strict = make_serde({"allowed_msgpack_modules": None})
    assert strict.pickle_fallback is True  # the official schema's default
    assert strict.loads_typed(strict.dumps_typed(Note("blocked"))) != Note("blocked")  # not allowlisted
    assert make_serde(None) is None  # no serde section: the saver's own default


async def test_a_custom_store_is_given_store_ttl(tmp_path):
    settings = settings_with(tmp_path, store={"path": f"{STORE}:store", "ttl": {"default_ttl": 60}})
    async with contextlib.AsyncExitStack() as stack:
        store = await open_store(settings, None, stack, None)
        assert type(store).__name__ == "TestStore" and store.given_ttl == {"default_ttl": 60}
