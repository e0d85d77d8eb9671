"""Settings from langgraph.json and the environment (official variable names)."""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

log = logging.getLogger(__name__)

KNOWN_KEYS = {"graphs", "env", "dependencies", "store", "checkpointer", "http", "auth", "webhooks", "ui", "ui_config"}
# Keys that only matter when building images: accepted, ignored.
IMAGE_KEYS = {
    "python_version", "node_version", "pip_config_file", "pip_installer", "dockerfile_lines", "image_distro",
    "base_image", "keep_pkg_tools", "api_version", "$schema", "description", "source",
}
# Official runtime keys this server does not implement: accepted with a warning.
UNSUPPORTED_KEYS = {"encryption", "priority"}


@dataclass
class Settings:
    config_path: Path
    graphs: dict[str, str]
    dependencies: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    store: dict[str, Any] = field(default_factory=dict)
    checkpointer: dict[str, Any] = field(default_factory=dict)
    http: dict[str, Any] = field(default_factory=dict)
    auth: dict[str, Any] = field(default_factory=dict)
    webhooks: dict[str, Any] = field(default_factory=dict)
    graph_configs: dict[str, dict] = field(default_factory=dict)  # LANGGRAPH_CONFIG: graph id → its default assistant's config
    database_uri: str | None = None
    redis_uri: str | None = None
    data_dir: Path = Path(".agent_server")
    n_jobs_per_worker: int = 10
    bg_job_timeout_secs: float = 3600.0
    lease_secs: float = 30.0  # a worker that misses this long of heartbeats loses its runs to others
    drain_timeout_secs: float = 30.0  # on SIGTERM, how long a worker lets its runs finish
    max_body_bytes: int = 16 * 1024 * 1024  # a larger request body is answered 413 before it is read
    body_timeout_secs: float = 30.0  # a client silent this long mid-body is answered 408
    run_queue: bool = True

    @property
    def base_dir(self) -> Path:
        return self.config_path.parent


def _fail(path: Path, message: str) -> ConfigError:
    return ConfigError(f"{path}: {message}")


def _mapping(path: Path, raw: dict, key: str) -> dict:
    value = {} if raw.get(key) is None else raw[key]
    if not isinstance(value, dict):
        raise _fail(path, f"'{key}' must be an object, got {type(value).__name__}")
    return value


def _read_env(path: Path, value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, str):
        from dotenv import dotenv_values

        env_file = (path.parent / value).resolve()
        if not env_file.is_file():
            raise _fail(path, f"'env' names {env_file}, which does not exist")
        return {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    raise _fail(path, "'env' must be a path to a .env file or an object")


def _env_number(name: str, default: float, kind=float):
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not a number") from None


def _graph_configs() -> dict[str, dict]:
    """LANGGRAPH_CONFIG: a JSON object of graph id → the config of that graph's default assistant."""
    raw = os.environ.get("LANGGRAPH_CONFIG")
    if not raw:
        return {}
    try:
        configs = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"environment variable LANGGRAPH_CONFIG is not valid JSON: {exc}") from None
    if not isinstance(configs, dict) or not all(
        isinstance(c, dict) and isinstance(c.get("configurable", {}), dict) for c in configs.values()
    ):
        raise ConfigError(
            "environment variable LANGGRAPH_CONFIG must be a JSON object of graph id to config object "
            "(whose `configurable`, if given, is an object)"
        )
    return configs


def load_settings(config: str | os.PathLike, **overrides: Any) -> Settings:
    """Read langgraph.json, apply its `env` to the process, then read the environment."""
    path = Path(config).resolve()
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise _fail(path, f"invalid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise _fail(path, "the top level must be an object")
    for key in sorted(set(raw) - KNOWN_KEYS - IMAGE_KEYS):
        reason = "is not supported by Agent Server" if key in UNSUPPORTED_KEYS else "is not a langgraph.json key"
        log.warning("%s: %r %s; ignored", path, key, reason)

    graphs = _mapping(path, raw, "graphs")
    if not graphs:
        raise _fail(path, "'graphs' must name at least one graph")
    for graph_id, spec in graphs.items():
        if isinstance(spec, dict):  # {"path": "...", "description": "..."} form
            spec = spec.get("path")
        if not isinstance(spec, str) or ":" not in spec:
            raise _fail(path, f"graphs.{graph_id} must be 'path/to/file.py:attr' or 'module:attr', got {spec!r}")
        graphs[graph_id] = spec

    deps = raw.get("dependencies") or []
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise _fail(path, "'dependencies' must be a list of strings")
    local_deps = [(path.parent / d).resolve() for d in deps if d.startswith((".", "/"))]
    for dep in local_deps:
        if not dep.is_dir():
            raise _fail(path, f"dependencies: local path {dep} is not a directory")
    env = _read_env(path, raw.get("env") or {})
    for key, value in env.items():  # the config's env never overrides the real environment
        os.environ.setdefault(key, value)

    data_dir = Path(os.environ.get("AGENT_SERVER_DATA_DIR") or path.parent / ".agent_server")
    settings = Settings(
        config_path=path,
        graphs=graphs,
        dependencies=local_deps,
        env=env,
        store=_mapping(path, raw, "store"),
        checkpointer=_mapping(path, raw, "checkpointer"),
        http=_mapping(path, raw, "http"),
        auth=_mapping(path, raw, "auth"),
        webhooks=_mapping(path, raw, "webhooks"),
        graph_configs=_graph_configs(),
        database_uri=os.environ.get("DATABASE_URI") or os.environ.get("POSTGRES_URI") or None,
        redis_uri=os.environ.get("REDIS_URI") or None,
        data_dir=data_dir,
        n_jobs_per_worker=_env_number("N_JOBS_PER_WORKER", Settings.n_jobs_per_worker, int),
        bg_job_timeout_secs=_env_number("BG_JOB_TIMEOUT_SECS", Settings.bg_job_timeout_secs),
        lease_secs=_env_number("AGENT_SERVER_LEASE_SECS", Settings.lease_secs),
        drain_timeout_secs=_env_number("DRAIN_TIMEOUT_SECS", Settings.drain_timeout_secs),
        max_body_bytes=_env_number("AGENT_SERVER_MAX_BODY_BYTES", Settings.max_body_bytes, int),
        body_timeout_secs=_env_number("AGENT_SERVER_BODY_TIMEOUT_SECS", Settings.body_timeout_secs),
    )
    for key, value in overrides.items():
        setattr(settings, key, value)
    if settings.n_jobs_per_worker < 1:
        raise ConfigError("N_JOBS_PER_WORKER must be at least 1")
    if settings.max_body_bytes < 1:
        raise ConfigError("AGENT_SERVER_MAX_BODY_BYTES must be at least 1")
    if settings.body_timeout_secs <= 0:
        raise ConfigError("AGENT_SERVER_BODY_TIMEOUT_SECS must be positive")
    return settings
