"""Settings from langgraph.json and the environment (official variable names)."""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .webhooks.policy import WebhookConfig

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
    cors_allow_origins: list[str] = field(default_factory=lambda: ["*"])  # CORS_ALLOW_ORIGINS
    auth: dict[str, Any] = field(default_factory=dict)
    webhooks: WebhookConfig = field(default_factory=WebhookConfig)  # the `webhooks` section, or LANGGRAPH_WEBHOOKS
    graph_configs: dict[str, dict] = field(default_factory=dict)  # LANGGRAPH_CONFIG: graph id → its default assistant's config
    database_uri: str | None = None
    redis_uri: str | None = None
    data_dir: Path = Path(".agent_server")
    n_jobs_per_worker: int = 10
    postgres_pool_max_size: int | None = None  # connections one process opens at most; None: from n_jobs_per_worker
    bg_job_timeout_secs: float = 3600.0
    lease_secs: float = 30.0  # a worker that misses this long of heartbeats loses its runs to others
    drain_timeout_secs: float = 30.0  # on SIGTERM, how long a worker lets its runs finish
    max_body_bytes: int = 16 * 1024 * 1024  # a larger request body is answered 413 before it is read
    body_timeout_secs: float = 30.0  # a client silent this long mid-body is answered 408
    run_queue: bool = True

    @property
    def pool_max_size(self) -> int:
        """PostgreSQL connections one process opens at most: LANGGRAPH_POSTGRES_POOL_MAX_SIZE (the official name;
        keep the sum over processes under the database's max_connections), else two per run slot of this process
        and ten more. An API process without the queue (`serve --no-queue`) has no run slots: its requests hold a
        connection for a statement or two, and ten serve a thousand streams' joins."""
        slots = self.n_jobs_per_worker if self.run_queue else 0
        return self.postgres_pool_max_size or slots * 2 + 10

    @property
    def base_dir(self) -> Path:
        return self.config_path.parent

    @property
    def store_ttl(self) -> dict[str, Any]:
        """store.ttl: refresh_on_read, default_ttl and sweep_interval_minutes (minutes, or None)."""
        return self.store.get("ttl") or {}

    @property
    def thread_ttl(self) -> dict[str, Any]:
        """checkpointer.ttl: strategy, default_ttl and sweep_interval_minutes (minutes, or None)."""
        return self.checkpointer.get("ttl") or {}

    @property
    def default_thread_ttl(self) -> dict[str, Any] | None:
        """checkpointer.ttl as the `ttl` of a thread made without one: {"strategy", "ttl": minutes}, or None."""
        config = self.thread_ttl
        return {"strategy": config.get("strategy", "delete"), "ttl": config["default_ttl"]} if config.get("default_ttl") else None


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


def _minutes(path: Path, where: str, value: Any) -> float | None:
    """A positive number of minutes, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise _fail(path, f"{where} must be a positive number of minutes, got {value!r}")
    return value


def _object(path: Path, where: str, value: Any, known: set[str]) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(path, f"'{where}' must be an object, got {type(value).__name__}")
    for key in sorted(set(value) - known):
        log.warning("%s: %r is not a key of '%s'; ignored", path, key, where)
    return {k: v for k, v in value.items() if k in known}


def _store_config(path: Path, store: dict) -> dict:
    """`store.index` (semantic search) and `store.ttl`, checked; the embed function loads at start."""
    out = dict(store)
    if store.get("index") is not None:
        index = _object(path, "store.index", store["index"], {"dims", "embed", "fields", "distance_type", "ann_index_config"})
        dims = index.get("dims")
        if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
            raise _fail(path, f"store.index.dims must be a positive integer (the embedding's length), got {dims!r}")
        if not isinstance(index.get("embed"), str) or ":" not in index["embed"]:
            raise _fail(path, "store.index.embed must be './file.py:func', 'module:func' or 'provider:model' "
                              f"(e.g. 'openai:text-embedding-3-small'), got {index.get('embed')!r}")
        fields = index.get("fields")
        if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) and f for f in fields)):
            raise _fail(path, f"store.index.fields must be a list of field paths, got {fields!r}")
        out["index"] = index
    else:
        out.pop("index", None)
    if "path" in store:
        out["path"] = _import_path(path, "store.path", store["path"])
    ttl = _object(path, "store.ttl", store.get("ttl"), {"refresh_on_read", "default_ttl", "sweep_interval_minutes"})
    if not isinstance(ttl.get("refresh_on_read", True), bool):
        raise _fail(path, f"store.ttl.refresh_on_read must be true or false, got {ttl['refresh_on_read']!r}")
    for key in ("default_ttl", "sweep_interval_minutes"):
        ttl[key] = _minutes(path, f"store.ttl.{key}", ttl.get(key))
    out["ttl"] = ttl
    return out


def _import_path(path: Path, where: str, value: Any) -> str:
    if not isinstance(value, str) or ":" not in value:
        raise _fail(path, f"{where} must be './file.py:func' or 'module:func' (an async context manager), got {value!r}")
    return value


BACKENDS = ("default", "mongo", "custom")


def _backend(path: Path, checkpointer: dict) -> str:
    """checkpointer.backend, as the official server resolves it: absent, 'custom' with a path, else
    LS_DEFAULT_CHECKPOINTER_BACKEND ('default' or 'mongo'), else 'default'."""
    env = os.environ.get("LS_DEFAULT_CHECKPOINTER_BACKEND", "").strip()
    if env and env not in ("default", "mongo"):
        raise ConfigError(f"LS_DEFAULT_CHECKPOINTER_BACKEND must be 'default' or 'mongo', got {env!r}")
    backend = checkpointer.get("backend") or ("custom" if "path" in checkpointer else env or "default")
    if backend not in BACKENDS:
        raise _fail(path, f"checkpointer.backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if (backend == "custom") != ("path" in checkpointer):
        raise _fail(path, "checkpointer.path (an async context manager yielding a BaseCheckpointSaver) goes with "
                          f"backend 'custom', and only with it; got backend {backend!r}"
                          f"{' and a path' if 'path' in checkpointer else ' and no path'}")
    return backend


def _serde(path: Path, serde: Any) -> dict:
    """checkpointer.serde, as the official schema has it: allowed_json_modules and allowed_msgpack_modules
    (a list of module paths, each a list of strings like ["my_agent", "models", "MyState"], or true, or null),
    pickle_fallback (true or false)."""
    serde = _object(path, "checkpointer.serde", serde, {"allowed_json_modules", "allowed_msgpack_modules", "pickle_fallback"})
    for key in ("allowed_json_modules", "allowed_msgpack_modules"):
        value = serde.get(key)
        modules = isinstance(value, list) and all(
            isinstance(m, list) and m and all(isinstance(part, str) and part for part in m) for m in value
        )
        if key in serde and not (value is None or isinstance(value, bool) or modules):
            raise _fail(path, f"checkpointer.serde.{key} must be a list of module paths (each a list of strings, "
                              f'e.g. [["my_agent", "models", "MyState"]]), true or null, got {value!r}')
    if not isinstance(serde.get("pickle_fallback", True), bool):
        raise _fail(path, f"checkpointer.serde.pickle_fallback must be true or false, got {serde['pickle_fallback']!r}")
    return serde


def _checkpointer_config(path: Path, checkpointer: dict) -> dict:
    """`checkpointer.ttl`: the TTL of threads created without one, and how often expired threads are swept;
    where checkpoints live (`backend`: default, mongo with `uri` or LS_MONGODB_URI, custom with `path`);
    `serde`, the built-in savers' serializer."""
    out = dict(checkpointer)
    out["backend"] = _backend(path, checkpointer)
    if out["backend"] == "custom":
        out["path"] = _import_path(path, "checkpointer.path", checkpointer["path"])
    if out["backend"] == "mongo":
        out["uri"] = checkpointer.get("uri") or os.environ.get("LS_MONGODB_URI") or os.environ.get("MONGODB_URI")
        if not isinstance(out["uri"], str) or not out["uri"]:
            raise _fail(path, "checkpointer backend 'mongo' needs a MongoDB URI (with the database name in its path, "
                              "of a replica set): set LS_MONGODB_URI, or checkpointer.uri")
    if "serde" in checkpointer:
        out["serde"] = _serde(path, checkpointer["serde"])
        if out["backend"] == "custom":
            log.warning("%s: checkpointer.serde applies to the built-in savers; a custom checkpointer sets its own", path)
    ttl = _object(path, "checkpointer.ttl", checkpointer.get("ttl"), {"strategy", "default_ttl", "sweep_interval_minutes"})
    strategy = ttl.setdefault("strategy", "delete")
    if strategy not in ("delete", "keep_latest"):
        raise _fail(path, f"checkpointer.ttl.strategy must be 'delete' or 'keep_latest', got {strategy!r}")
    for key in ("default_ttl", "sweep_interval_minutes"):
        ttl[key] = _minutes(path, f"checkpointer.ttl.{key}", ttl.get(key))
    out["ttl"] = ttl
    return out


HTTP_SWITCHES = {
    "disable_assistants", "disable_threads", "disable_runs", "disable_store", "disable_meta", "disable_mcp",
    "disable_a2a", "disable_ui", "disable_webhooks", "enable_custom_route_auth",
}
# CORSMiddleware's options: what each must be, and how to say it.
CORS_KEYS = {
    **dict.fromkeys(("allow_origins", "allow_methods", "allow_headers", "expose_headers"), "a list of strings"),
    "allow_credentials": "true or false", "allow_private_network": "true or false",
    "allow_origin_regex": "a string", "max_age": "a number of seconds",
}
HEADER_KEYS = {"include", "includes", "exclude", "excludes"}


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _cors(where: str, cors: Any) -> dict:
    """`http.cors` or CORS_CONFIG, each option of its type."""
    if not isinstance(cors, dict):
        raise ConfigError(f"{where} must be an object, got {type(cors).__name__}")
    for key, value in cors.items():
        kind = CORS_KEYS.get(key)
        if kind is None:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(CORS_KEYS))})")
        ok = {
            "a list of strings": _strings(value), "true or false": isinstance(value, bool),
            "a string": isinstance(value, str),
            "a number of seconds": isinstance(value, int) and not isinstance(value, bool) and value >= 0,
        }[kind]
        if not ok:
            raise ConfigError(f"{where}.{key} must be {kind}, got {value!r}")
    return cors


def _http_config(path: Path, http: dict) -> dict:
    """`http`, checked; CORS_CONFIG (JSON) replaces `http.cors` and MOUNT_PREFIX `http.mount_prefix`."""
    http = dict(http)
    for key in sorted(HTTP_SWITCHES & set(http)):
        if not isinstance(http[key], bool):
            raise _fail(path, f"http.{key} must be true or false, got {http[key]!r}")
    if http.get("app") is not None and (not isinstance(http["app"], str) or ":" not in http["app"]):
        raise _fail(path, f"http.app must be './path/to/file.py:app' or 'module:app', got {http['app']!r}")
    if (http.get("middleware_order") or "middleware_first") not in ("auth_first", "middleware_first"):
        raise _fail(path, f"http.middleware_order must be 'auth_first' or 'middleware_first', got {http['middleware_order']!r}")
    for key in ("configurable_headers", "logging_headers"):
        headers = http.get(key)
        if headers is None:
            continue
        if not isinstance(headers, dict) or set(headers) - HEADER_KEYS or not all(map(_strings, headers.values())):
            raise _fail(path, f"http.{key} must be an object of 'include' and 'exclude' lists of header name "
                              f"patterns (e.g. {{\"include\": [\"x-*\"]}}), got {headers!r}")
    if os.environ.get("CORS_CONFIG"):
        try:
            http["cors"] = _cors("environment variable CORS_CONFIG", json.loads(os.environ["CORS_CONFIG"]))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"environment variable CORS_CONFIG is not valid JSON: {exc}") from None
    elif http.get("cors") is not None:
        try:
            http["cors"] = _cors("http.cors", http["cors"])
        except ConfigError as exc:
            raise _fail(path, str(exc)) from None
    prefix = os.environ.get("MOUNT_PREFIX") or http.get("mount_prefix")
    if prefix is not None:
        if not isinstance(prefix, str) or not prefix.startswith("/") or prefix.rstrip("/") in ("", "/noauth"):
            raise _fail(path, f"http.mount_prefix (or MOUNT_PREFIX) must be a path such as '/api', got {prefix!r}")
        http["mount_prefix"] = prefix.rstrip("/")
    known = HTTP_SWITCHES | {"app", "cors", "configurable_headers", "logging_headers", "middleware_order", "mount_prefix"}
    for key in sorted(set(http) - known):
        log.warning("%s: %r is not a key of 'http'; ignored", path, key)
    return http


def _webhooks(path: Path, raw: dict) -> WebhookConfig:
    """`webhooks`, checked, its header templates resolved; LANGGRAPH_WEBHOOKS (JSON), as the official server
    reads it, replaces it."""
    where, value = f"{path}: ", _mapping(path, raw, "webhooks")
    if os.environ.get("LANGGRAPH_WEBHOOKS"):
        where = "environment variable LANGGRAPH_WEBHOOKS: "
        try:
            value = json.loads(os.environ["LANGGRAPH_WEBHOOKS"])
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}not valid JSON: {exc}") from None
    try:
        return WebhookConfig.parse(value)
    except ValueError as exc:
        raise ConfigError(f"{where}{exc}") from None


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
        store=_store_config(path, _mapping(path, raw, "store")),
        checkpointer=_checkpointer_config(path, _mapping(path, raw, "checkpointer")),
        http=_http_config(path, _mapping(path, raw, "http")),
        cors_allow_origins=[o.strip() for o in os.environ.get("CORS_ALLOW_ORIGINS", "*").split(",") if o.strip()],
        auth=_mapping(path, raw, "auth"),
        webhooks=_webhooks(path, raw),
        graph_configs=_graph_configs(),
        database_uri=os.environ.get("DATABASE_URI") or os.environ.get("POSTGRES_URI") or None,
        redis_uri=os.environ.get("REDIS_URI") or None,
        data_dir=data_dir,
        n_jobs_per_worker=_env_number("N_JOBS_PER_WORKER", Settings.n_jobs_per_worker, int),
        postgres_pool_max_size=_env_number("LANGGRAPH_POSTGRES_POOL_MAX_SIZE", None, int),
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
    if settings.postgres_pool_max_size is not None and settings.postgres_pool_max_size < 2:
        raise ConfigError("LANGGRAPH_POSTGRES_POOL_MAX_SIZE must be at least 2 (the pool keeps 2 connections open)")
    if settings.max_body_bytes < 1:
        raise ConfigError("AGENT_SERVER_MAX_BODY_BYTES must be at least 1")
    if settings.body_timeout_secs <= 0:
        raise ConfigError("AGENT_SERVER_BODY_TIMEOUT_SECS must be positive")
    return settings
