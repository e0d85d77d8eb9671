"""The webhook URL policy: the official `webhooks` section of langgraph.json, and the addresses refused by default.
No network: IP literals and names that need no DNS."""
from __future__ import annotations

import json

import pytest

from agent_server.config import load_settings
from agent_server.errors import ConfigError
from agent_server.webhooks.policy import NotResolved, Refused, WebhookConfig


def check(config: WebhookConfig, url: str):
    import asyncio

    return asyncio.run(config.check(url))


@pytest.mark.parametrize("url, kind", [
    ("http://10.0.0.1/hook", "private"),
    ("http://192.168.1.5:8080/hook", "private"),
    ("http://100.64.0.1/hook", "private"),
    ("http://[fd12::1]/hook", "private"),
    ("http://127.0.0.1:9/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://localhost/hook", "this machine"),
    ("http://169.254.10.1/hook", "link-local"),
    ("http://169.254.169.254/latest/meta-data", "cloud metadata"),
    ("http://0.0.0.0/hook", "reserved"),
    ("http://224.0.0.1/hook", "reserved"),
    ("http://metadata.google.internal/x", "internal service"),
    ("http://api.default.svc.cluster.local/x", "internal service"),
])
def test_internal_addresses_are_refused_by_default(url, kind):
    with pytest.raises(Refused, match=kind):
        check(WebhookConfig(), url)


def test_a_public_address_is_allowed_and_pinned():
    target = check(WebhookConfig(), "https://93.184.216.34:8443/hook?x=1")
    assert (target.host, target.address) == ("93.184.216.34", "93.184.216.34")


def test_the_operator_allows_loopback_and_private_addresses():
    config = WebhookConfig.parse({"url": {"require_https": False, "disable_loopback": False, "disable_private_ips": False}})
    assert check(config, "http://127.0.0.1:9/hook").address == "127.0.0.1"
    assert check(config, "http://10.0.0.1/hook").address == "10.0.0.1"
    assert check(config, "http://localhost:9/hook").address is None  # by name, as allowed
    with pytest.raises(Refused, match="link-local"):  # never, but for a host listed in allowed_domains
        check(config, "http://169.254.10.1/hook")


def test_url_policy_keys():
    config = WebhookConfig.parse({"url": {
        "allowed_domains": ["hooks.example.com", "*.corp.example"], "allowed_ports": [443, 8443], "max_url_length": 60,
    }})
    assert config.require_https  # a `url` section requires https unless it says otherwise, as the official server
    with pytest.raises(Refused, match="https"):
        check(config, "http://hooks.example.com/x")
    with pytest.raises(Refused, match="port 9443"):
        check(config, "https://hooks.example.com:9443/x")
    with pytest.raises(Refused, match="allowed_domains"):
        check(config, "https://evil.example.com/x")
    with pytest.raises(Refused, match="allowed_domains"):
        check(config, "https://corp.example/x")  # a wildcard is for subdomains only
    with pytest.raises(Refused, match="too long"):
        check(config, "https://hooks.example.com/" + "x" * 60)
    # A listed host is the operator's choice: not resolved, not checked further.
    assert check(config, "https://hooks.example.com/x").address is None
    assert check(config, "https://a.b.corp.example:8443/x").address is None
    assert not WebhookConfig.parse({}).require_https  # no `url` section: http allowed


def test_a_host_that_does_not_resolve_is_refused():
    with pytest.raises(NotResolved):
        check(WebhookConfig(), "https://nowhere.invalid/hook")


def test_headers_take_prefixed_environment_variables(monkeypatch):
    monkeypatch.setenv("LG_WEBHOOK_TOKEN", "s3cret")
    monkeypatch.setenv("MY_TOKEN", "other")
    config = WebhookConfig.parse({"headers": {"Authorization": "Bearer ${{ env.LG_WEBHOOK_TOKEN }}", "X-Plain": "v"}})
    assert config.headers == {"Authorization": "Bearer s3cret", "X-Plain": "v"}
    assert WebhookConfig.parse({"env_prefix": "MY_", "headers": {"X": "${{env.MY_TOKEN}}"}}).headers == {"X": "other"}
    with pytest.raises(ValueError, match="env_prefix"):  # an allowlist: not any variable of the process
        WebhookConfig.parse({"headers": {"X": "${{ env.MY_TOKEN }}"}})
    with pytest.raises(ValueError, match="LG_WEBHOOK_MISSING is not set"):
        WebhookConfig.parse({"headers": {"X": "${{ env.LG_WEBHOOK_MISSING }}"}})


def test_allowed_fields_cut_the_payload():
    config = WebhookConfig.parse({"allowed_fields": ["run_id", "status"]})
    assert config.payload({"run_id": "r", "status": "success", "values": {"a": 1}}) == {"run_id": "r", "status": "success"}
    with pytest.raises(ValueError, match="unknown field"):
        WebhookConfig.parse({"allowed_fields": ["run_id", "secrets"]})


@pytest.mark.parametrize("webhooks, message", [
    ({"url": []}, "webhooks.url must be an object"),
    ({"url": {"require_https": "yes"}}, "require_https"),
    ({"url": {"allowed_domains": "example.com"}}, "allowed_domains"),
    ({"url": {"allowed_domains": ["ex*ample.com"]}}, "wildcard"),
    ({"url": {"allowed_ports": [0]}}, "allowed_ports"),
    ({"url": {"max_url_length": -1}}, "max_url_length"),
    ({"headers": {"X": 1}}, "webhooks.headers.X"),
    ({"headers": {"X": "${{ secrets.A }}"}}, "env.VAR"),
])
def test_a_bad_webhooks_section_stops_the_server(tmp_path, webhooks, message):
    path = tmp_path / "langgraph.json"
    path.write_text(json.dumps({"graphs": {"g": "./g.py:graph"}, "webhooks": webhooks}))
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_langgraph_webhooks_replaces_the_section(tmp_path, monkeypatch):
    path = tmp_path / "langgraph.json"
    path.write_text(json.dumps({"graphs": {"g": "./g.py:graph"}, "webhooks": {"url": {"require_https": True}}}))
    monkeypatch.setenv("LANGGRAPH_WEBHOOKS", json.dumps({"url": {"require_https": False, "disable_loopback": False}}))
    config = load_settings(path).webhooks
    assert not config.require_https and not config.disable_loopback
    monkeypatch.setenv("LANGGRAPH_WEBHOOKS", "{nope")
    with pytest.raises(ConfigError, match="LANGGRAPH_WEBHOOKS"):
        load_settings(path)
