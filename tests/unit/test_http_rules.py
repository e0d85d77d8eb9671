"""The `http` section's rules without a server: header patterns, which switch a route falls under, CORS
options, and the section checked as langgraph.json is read."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_server.api.http_config import HeaderFilter, cors_options, switch_of
from agent_server.config import Settings, load_settings
from agent_server.errors import ConfigError


def load(folder: Path, **http) -> Settings:
    path = folder / "langgraph.json"
    path.write_text(json.dumps({"graphs": {"g": "./g.py:graph"}, "http": http}))
    return load_settings(path)


def test_header_patterns_include_then_exclude_with_only_star_as_wildcard():
    f = HeaderFilter({"include": ["x-user-*", "X-Org-Id", "a.b"], "exclude": ["x-user-secret*"]})
    assert f.allows("x-user-id") and f.allows("x-user-") and f.allows("x-org-id") and f.allows("a.b")
    assert not f.allows("x-user-secret-key") and not f.allows("x-org-idx") and not f.allows("axb")
    assert not f.allows("prefix-x-user-id")


def test_no_header_by_default_and_credentials_never():
    assert HeaderFilter(None).select([("x-user-id", "1"), ("user-agent", "ua")]) == ()
    everything = HeaderFilter({"includes": ["*"]})
    picked = dict(everything.select([("authorization", "t"), ("x-api-key", "k"), ("x-user-id", "1")]))
    assert picked == {"x-user-id": "1"}


@pytest.mark.parametrize("path, switch", [
    ("/threads", "disable_threads"),
    ("/threads/{thread_id}/state", "disable_threads"),
    ("/threads/{thread_id}/stream", "disable_threads"),
    ("/threads/{thread_id}/runs", "disable_runs"),
    ("/threads/{thread_id}/runs/{run_id}/stream", "disable_runs"),
    ("/threads/{thread_id}/runs/crons", "disable_runs"),
    ("/runs/crons/search", "disable_runs"),
    ("/queue", "disable_runs"),
    ("/assistants/{assistant_id}/graph", "disable_assistants"),
    ("/store/items", "disable_store"),
    ("/openapi.json", "disable_meta"),
    ("/docs/assets", "disable_meta"),
    ("/ok", None),
    ("/threadsx", None),
])
def test_each_route_falls_under_its_switch(path, switch):
    assert switch_of(path) == switch


def test_default_cors_and_named_origins(tmp_path, monkeypatch):
    default = cors_options(load(tmp_path))
    assert default["allow_origins"] == ["*"] and default["allow_credentials"] is False
    assert default["allow_private_network"] is True
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "http://a.test, http://b.test")
    named = cors_options(load(tmp_path))
    assert named["allow_origins"] == ["http://a.test", "http://b.test"] and named["allow_credentials"] is True
    # a configured CORS without origins takes CORS_ALLOW_ORIGINS's
    assert cors_options(load(tmp_path, cors={"max_age": 5}))["allow_origins"] == ["http://a.test", "http://b.test"]


def test_cors_config_variable_replaces_http_cors(tmp_path, monkeypatch):
    monkeypatch.setenv("CORS_CONFIG", '{"allow_origins": ["http://env.test"]}')
    settings = load(tmp_path, cors={"allow_origins": ["http://file.test"]})
    assert cors_options(settings)["allow_origins"] == ["http://env.test"]
    monkeypatch.setenv("CORS_CONFIG", "{nope")
    with pytest.raises(ConfigError, match="CORS_CONFIG is not valid JSON"):
        load(tmp_path)


@pytest.mark.parametrize("http, message", [
    ({"cors": {"allow_origins": "*"}}, "http.cors.allow_origins must be a list of strings"),
    ({"cors": {"max_age": "10"}}, "http.cors.max_age must be a number of seconds"),
    ({"cors": {"allow_everything": True}}, "unknown key 'allow_everything'"),
    ({"disable_runs": "yes"}, "http.disable_runs must be true or false"),
    ({"middleware_order": "auth_last"}, "http.middleware_order must be 'auth_first' or 'middleware_first'"),
    ({"configurable_headers": {"include": "x-*"}}, "http.configurable_headers must be an object"),
    ({"mount_prefix": "api"}, "mount_prefix"),
    ({"mount_prefix": "/"}, "mount_prefix"),
    ({"app": "webapp.py"}, "http.app must be"),
])
def test_bad_http_section_is_refused_naming_the_key(tmp_path, http, message):
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, **http)


def test_mount_prefix_loses_its_trailing_slash(tmp_path):
    assert load(tmp_path, mount_prefix="/api/").http["mount_prefix"] == "/api"
