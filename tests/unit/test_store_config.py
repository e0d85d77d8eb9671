"""store.index, store.ttl and checkpointer.ttl in langgraph.json: checked at load, named when wrong; the
embed function named by store.index.embed."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from agent_server.config import load_settings
from agent_server.errors import ConfigError
from agent_server.graphs import load_embeddings

TESTS = Path(__file__).parent.parent


def write_config(folder: Path, **raw) -> Path:
    path = folder / "langgraph.json"
    path.write_text(json.dumps({"graphs": {"g": "./g.py:graph"}, **raw}))
    return path


def test_valid_store_and_checkpointer_config_is_normalized(tmp_path):
    settings = load_settings(write_config(
        tmp_path,
        store={"index": {"dims": 8, "embed": "./embed.py:embed", "fields": ["text"]},
               "ttl": {"default_ttl": 1.5, "refresh_on_read": False}},
        checkpointer={"ttl": {"default_ttl": 30}},
    ))
    assert settings.store["index"] == {"dims": 8, "embed": "./embed.py:embed", "fields": ["text"]}
    assert settings.store_ttl == {"default_ttl": 1.5, "refresh_on_read": False, "sweep_interval_minutes": None}
    assert settings.thread_ttl == {"strategy": "delete", "default_ttl": 30, "sweep_interval_minutes": None}


def test_no_store_config_means_no_index_and_no_ttls(tmp_path):
    settings = load_settings(write_config(tmp_path))
    assert "index" not in settings.store
    assert settings.store_ttl.get("default_ttl") is None and settings.thread_ttl.get("default_ttl") is None


@pytest.mark.parametrize("raw, field", [
    ({"store": {"index": {"embed": "./e.py:f"}}}, "store.index.dims"),
    ({"store": {"index": {"dims": 0, "embed": "./e.py:f"}}}, "store.index.dims"),
    ({"store": {"index": {"dims": "8", "embed": "./e.py:f"}}}, "store.index.dims"),
    ({"store": {"index": {"dims": 8}}}, "store.index.embed"),
    ({"store": {"index": {"dims": 8, "embed": "nocolon"}}}, "store.index.embed"),
    ({"store": {"index": {"dims": 8, "embed": "./e.py:f", "fields": "text"}}}, "store.index.fields"),
    ({"store": {"index": "yes"}}, "store.index"),
    ({"store": {"ttl": {"default_ttl": -1}}}, "store.ttl.default_ttl"),
    ({"store": {"ttl": {"sweep_interval_minutes": "5"}}}, "store.ttl.sweep_interval_minutes"),
    ({"store": {"ttl": {"refresh_on_read": "yes"}}}, "store.ttl.refresh_on_read"),
    ({"checkpointer": {"ttl": {"strategy": "forever"}}}, "checkpointer.ttl.strategy"),
    ({"checkpointer": {"ttl": {"default_ttl": 0}}}, "checkpointer.ttl.default_ttl"),
    ({"checkpointer": {"ttl": []}}, "checkpointer.ttl"),
])
def test_invalid_store_config_names_the_field(tmp_path, raw, field):
    config = write_config(tmp_path, **raw)
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert str(config) in str(err.value) and field in str(err.value)


def test_embed_from_a_file_relative_to_the_config_and_from_a_module(tmp_path):
    (tmp_path / "my_embed.py").write_text("def embed(texts):\n    return [[1.0, 0.0] for _ in texts]\n")
    assert load_embeddings("./my_embed.py:embed", tmp_path)(["a"]) == [[1.0, 0.0]]
    assert load_embeddings("json:dumps", tmp_path) is json.dumps  # module:func


@pytest.mark.parametrize("spec, says", [
    ("./missing.py:embed", "not found"),
    ("./my_embed.py:nope", "no attribute 'nope'"),
    ("./my_embed.py:NUMBER", "not a function"),
])
def test_embed_that_does_not_load_is_a_config_error(tmp_path, spec, says):
    (tmp_path / "my_embed.py").write_text("NUMBER = 5\n")
    with pytest.raises(ConfigError, match=says):
        load_embeddings(spec, tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("langchain") is not None, reason="langchain is installed")
def test_provider_model_without_langchain_says_what_to_install(tmp_path):
    with pytest.raises(ConfigError, match="pip install langchain"):
        load_embeddings("openai:text-embedding-3-small", tmp_path)
