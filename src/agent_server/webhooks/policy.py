"""Which webhook URLs a run may name: the official `webhooks` section of langgraph.json (`url` policy,
`headers` with `${{ env.VAR }}`, `env_prefix`, `allowed_fields`), and the addresses never to call.

A URL is checked when its run is created (a refusal is a 422) and again, resolved anew, before each
delivery: a host that resolved to a public address then and to an internal one now (DNS rebinding) is
refused, and the request goes to the address that was checked."""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

# What a payload may be cut down to (`allowed_fields`), as the official server names them.
PAYLOAD_FIELDS = frozenset({
    "run_id", "thread_id", "assistant_id", "created_at", "updated_at", "metadata", "kwargs", "multitask_strategy",
    "status", "run_started_at", "run_ended_at", "webhook_sent_at", "values", "error",
})
_TEMPLATE = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")  # ${{ env.LG_WEBHOOK_TOKEN }}
_URL_KEYS = {"require_https", "allowed_domains", "allowed_ports", "max_url_length", "disable_loopback", "disable_private_ips"}

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "host.docker.internal"})
# Never called, whatever the policy (but a host the operator lists in allowed_domains), as the official server.
_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.amazonaws.com", "metadata", "instance-data"})
_METADATA_IPS = frozenset(map(ipaddress.ip_address, ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")))
_PRIVATE = tuple(map(ipaddress.ip_network, ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
RESOLVE_SECONDS = 5.0


class Refused(Exception):
    """This URL may not be called; the message says why (and which setting would allow it)."""


class NotResolved(Refused):
    """The host does not resolve (now): refused at creation, retried at delivery."""


@dataclass(frozen=True)
class Target:
    """Where a checked URL's request goes: `address`, the IP that was checked (None: by name, as the
    operator allowed that host)."""

    url: str
    host: str
    address: str | None


@dataclass(frozen=True)
class WebhookConfig:
    require_https: bool = False
    allowed_domains: tuple[str, ...] = ()  # exact hosts, or "*.example.com" for its subdomains
    allowed_ports: tuple[int, ...] = ()
    max_url_length: int = 4096
    disable_loopback: bool = True
    # Ours: private addresses are refused unless allowed (the official server allows them by default).
    disable_private_ips: bool = True
    headers: dict[str, str] = field(default_factory=dict)  # sent with every delivery, templates resolved
    allowed_fields: frozenset[str] | None = None

    @classmethod
    def parse(cls, raw: Any) -> "WebhookConfig":
        """The `webhooks` section (or LANGGRAPH_WEBHOOKS); ValueError naming the bad key."""
        if raw is None:
            return cls()
        _expect(isinstance(raw, dict), "webhooks must be an object")
        policy = {} if raw.get("url") is None else raw["url"]
        _expect(isinstance(policy, dict), "webhooks.url must be an object")
        for key in sorted(set(policy) - _URL_KEYS):
            log.warning("webhooks.url.%s is not a webhook URL policy key; ignored", key)
        # As the official server: a `url` section requires https and shortens URLs unless it says otherwise.
        defaults = {"require_https": True, "max_url_length": 2048} if "url" in raw else {}
        for key in ("require_https", "disable_loopback", "disable_private_ips"):
            _expect(isinstance(policy.get(key, False), bool), f"webhooks.url.{key} must be true or false")
        domains = policy.get("allowed_domains") or []
        _expect(
            isinstance(domains, list) and all(isinstance(d, str) and d.strip() for d in domains),
            "webhooks.url.allowed_domains must be a list of non-empty strings",
        )
        for domain in domains:
            _expect("*" not in domain or (domain.startswith("*.") and "*" not in domain[2:]),
                    f"webhooks.url.allowed_domains: a wildcard only starts a domain ('*.example.com'), not {domain!r}")
        ports = policy.get("allowed_ports") or []
        _expect(
            isinstance(ports, list) and all(isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports),
            "webhooks.url.allowed_ports must be a list of port numbers",
        )
        length = policy.get("max_url_length", defaults.get("max_url_length", cls.max_url_length))
        _expect(isinstance(length, int) and not isinstance(length, bool) and length > 0,
                "webhooks.url.max_url_length must be a positive integer")
        fields = raw.get("allowed_fields")
        if fields is not None:
            _expect(isinstance(fields, list) and all(isinstance(f, str) for f in fields),
                    "webhooks.allowed_fields must be a list of strings")
            unknown = sorted(set(fields) - PAYLOAD_FIELDS)
            _expect(not unknown, f"webhooks.allowed_fields: unknown field(s) {unknown}; valid: {sorted(PAYLOAD_FIELDS)}")
        return cls(
            require_https=policy.get("require_https", defaults.get("require_https", False)),
            allowed_domains=tuple(d.strip().lower() for d in domains),
            allowed_ports=tuple(ports),
            max_url_length=length,
            disable_loopback=policy.get("disable_loopback", True),
            disable_private_ips=policy.get("disable_private_ips", True),
            headers=_headers(raw.get("headers"), raw.get("env_prefix", "LG_WEBHOOK_")),
            allowed_fields=frozenset(fields) if fields is not None else None,
        )

    def payload(self, payload: dict) -> dict:
        """The payload cut down to `allowed_fields`, when set."""
        if self.allowed_fields is None:
            return payload
        return {k: v for k, v in payload.items() if k in self.allowed_fields}

    async def check(self, url: str) -> Target:
        """Where this URL's request may go; Refused (saying why) when the policy forbids it."""
        if len(url) > self.max_url_length:
            raise Refused(f"the URL is too long ({len(url)} characters; webhooks.url.max_url_length is {self.max_url_length})")
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise Refused(f"not a valid URL ({exc})") from None
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise Refused("it must be an absolute http(s) URL with a host")
        if self.require_https and parts.scheme != "https":
            raise Refused("it must use https (webhooks.url.require_https)")
        if self.allowed_ports and port not in self.allowed_ports:
            raise Refused(f"port {port} is not in webhooks.url.allowed_ports")
        if self.allowed_domains:
            if not self._domain_allowed(host):
                raise Refused(f"host {host!r} is not in webhooks.url.allowed_domains")
            return Target(url, host, None)  # the operator named it: wherever it resolves
        if host in _METADATA_NAMES or host.endswith(".svc.cluster.local"):
            raise Refused(f"host {host!r} is an internal service name")
        if host in _LOOPBACK_NAMES:
            if self.disable_loopback:
                raise Refused(f"host {host!r} is this machine; {_ALLOW['loopback']}")
            return Target(url, host, None)
        try:
            async with asyncio.timeout(RESOLVE_SECONDS):
                infos = await asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise NotResolved(f"host {host!r} did not resolve in {RESOLVE_SECONDS:.0f}s") from None
        except (OSError, ValueError) as exc:  # not found; or not a host name at all (a NUL, a label too long)
            raise NotResolved(f"host {host!r} does not resolve ({exc})") from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        for address in addresses:  # every one: the connection could go to any of them
            kind = self.refused_kind(ipaddress.ip_address(address.split("%")[0]))
            if kind is not None:
                shown = host if host == address else f"{host!r} resolves to {address}, which"
                raise Refused(f"{shown} is a {kind} address; {_ALLOW[kind]}")
        return Target(url, host, addresses[0])

    def refused_kind(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        """Why this address may not be called (None: it may)."""
        if isinstance(addr, ipaddress.IPv6Address):
            if addr.ipv4_mapped is not None:
                addr = addr.ipv4_mapped
            elif addr in _NAT64:
                addr = ipaddress.IPv4Address(addr.packed[-4:])
        if addr in _METADATA_IPS:
            return "cloud metadata"
        if addr.is_loopback:
            return "loopback" if self.disable_loopback else None
        if any(addr in net for net in _PRIVATE if net.version == addr.version):
            return "private" if self.disable_private_ips else None
        if addr.is_link_local:
            return "link-local"
        if not addr.is_global or addr.is_multicast:  # unspecified, multicast, documentation, reserved ranges
            return "reserved"
        return None

    def _domain_allowed(self, host: str) -> bool:
        return any(
            host.endswith(domain[1:]) if domain.startswith("*.") else host == domain
            for domain in self.allowed_domains
        )


_ALLOW = {
    "loopback": "set webhooks.url.disable_loopback to false in langgraph.json to allow it",
    "private": "set webhooks.url.disable_private_ips to false in langgraph.json to allow it",
    "link-local": "list the host in webhooks.url.allowed_domains to allow it",
    "reserved": "list the host in webhooks.url.allowed_domains to allow it",
    "cloud metadata": "list the host in webhooks.url.allowed_domains to allow it",
}


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _headers(headers: Any, env_prefix: Any) -> dict[str, str]:
    """The headers with `${{ env.VAR }}` replaced, at startup; VAR must start with `env_prefix` (an
    allowlist: a config cannot send out any variable of the process) and be set."""
    if not headers:
        return {}
    _expect(isinstance(headers, dict), "webhooks.headers must be an object of header name to string")
    _expect(isinstance(env_prefix, str), "webhooks.env_prefix must be a string")

    def value(match: re.Match) -> str:
        expr = match.group(1).strip()
        name = expr[len("env."):] if expr.startswith("env.") else ""
        _expect(bool(name) and "." not in name, f"webhooks.headers: {expr!r} is not of the form env.VAR")
        _expect(name.startswith(env_prefix), f"webhooks.headers: {name} does not start with env_prefix {env_prefix!r}")
        _expect(name in os.environ, f"webhooks.headers: environment variable {name} is not set")
        return os.environ[name]

    rendered = {}
    for name, template in headers.items():
        _expect(isinstance(template, str), f"webhooks.headers.{name} must be a string")
        rendered[str(name)] = _TEMPLATE.sub(value, template)
    return rendered
