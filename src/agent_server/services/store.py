"""The long-term store: items under namespaces, searched by filter or by meaning (store.index), with TTLs.

The same store graphs get as `store` (runtime.store): what a graph writes, the API reads, and back.
Labels of a namespace are joined with dots in the database, hence the rules on them below."""
from __future__ import annotations

import logging
from typing import Any

from langgraph.store.base import NOT_PROVIDED, Item

from ..errors import Invalid
from ..serde import dumps
from . import Context

log = logging.getLogger(__name__)

# A namespace and a key together are the store's primary key: a btree entry, which PostgreSQL caps at
# about 2.7 kB. Under these limits an item always fits (a longer one would fail in the database).
MAX_NAMESPACE_BYTES = 1024
MAX_KEY_BYTES = 1024
MAX_FIELD_PATH_BYTES = 256  # a path of `index`: with the namespace and key, the key of its vector
MAX_TTL_MINUTES = 2**31 - 1  # the store keeps a TTL as a PostgreSQL integer
OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")


def _namespace(field: str, labels: list[str] | None, *, required: bool = True) -> tuple[str, ...]:
    labels = tuple(labels or ())
    if required and not labels:
        raise Invalid(f"{field} must have at least one label")
    for label in labels:
        if not label or "." in label or "\x00" in label:
            raise Invalid(f"{field}: label {label!r} must be a non-empty string without periods ('.')")
    if len(".".join(labels).encode()) > MAX_NAMESPACE_BYTES:
        raise Invalid(f"{field} is too long: at most {MAX_NAMESPACE_BYTES} bytes, its labels joined with dots")
    return labels


def _key(key: str) -> str:
    if len(key.encode()) > MAX_KEY_BYTES:
        raise Invalid(f"key is too long: at most {MAX_KEY_BYTES} bytes")
    return key


def _json(field: str, value: Any) -> Any:
    """A value JSON can carry both ways: one our answers could not encode (an integer past 64 bits) is refused."""
    try:
        dumps(value)
    except TypeError as exc:
        raise Invalid(f"{field}: {exc}") from None
    return value


def _filter(filter: dict[str, Any] | None) -> dict[str, Any] | None:
    """Each field's condition: a value (equality), or an object of operators. An object without operators
    is a value too (langgraph's store would take its keys for operators)."""
    if not filter:
        return None
    _json("filter", filter)
    out = {}
    for field, condition in filter.items():
        if isinstance(condition, dict) and any(str(k).startswith("$") for k in condition):
            for op in condition:
                if op not in OPERATORS:
                    raise Invalid(f"filter.{field}: unsupported operator {op!r}; use {', '.join(OPERATORS)}")
            out[field] = condition
        else:
            out[field] = {"$eq": condition} if isinstance(condition, dict) else condition
    return out


def item_json(item: Item | None) -> dict | None:
    return item.dict() if item is not None else None


async def put_item(
    rt, ctx: Context, namespace: list[str], key: str, value: dict, *, index: list[str] | bool | None = None,
    ttl: float | None | object = NOT_PROVIDED,
) -> None:
    """`ttl` in minutes; not given: store.ttl.default_ttl; None: the item never expires."""
    asked = {"namespace": _namespace("namespace", namespace), "key": key, "value": value, "index": index}
    await ctx.authorize("store", "put", asked)  # the policy may scope the namespace (a user's own prefix)
    namespace, key, value, index = (asked[k] for k in ("namespace", "key", "value", "index"))
    namespace = _namespace("namespace", namespace)
    if namespace[0] == "langgraph":
        raise Invalid("namespace: the root label 'langgraph' is reserved")
    if isinstance(ttl, (int, float)) and abs(ttl) > MAX_TTL_MINUTES:
        raise Invalid(f"ttl must be at most {MAX_TTL_MINUTES} minutes")
    for path in index or ():
        if len(path.encode()) > MAX_FIELD_PATH_BYTES:
            raise Invalid(f"index: a field path is at most {MAX_FIELD_PATH_BYTES} bytes")
    await rt.store.aput(namespace, _key(key), _json("value", value), index=index, ttl=ttl)


async def get_item(rt, ctx: Context, namespace: list[str], key: str, *, refresh_ttl: bool | None = None) -> dict | None:
    """The item, or None (as the official server answers: 200 and null)."""
    namespace, key = await _allowed(ctx, "get", namespace, key)
    return item_json(await rt.store.aget(namespace, key, refresh_ttl=refresh_ttl))


async def delete_item(rt, ctx: Context, namespace: list[str], key: str) -> None:
    await rt.store.adelete(*await _allowed(ctx, "delete", namespace, key))


async def _allowed(ctx: Context, action: str, namespace: list[str], key: str) -> tuple[tuple[str, ...], str]:
    """The item's namespace and key once the policy has seen them (it may scope the namespace)."""
    asked = {"namespace": _namespace("namespace", namespace), "key": _key(key)}
    await ctx.authorize("store", action, asked)
    return _namespace("namespace", asked["namespace"]), _key(asked["key"])


async def search_items(
    rt, ctx: Context, namespace_prefix: list[str] | None, *, filter: dict | None = None, limit: int = 10,
    offset: int = 0, query: str | None = None, refresh_ttl: bool | None = None,
) -> list[dict]:
    """Items under the prefix; with `query` and store.index, ranked by similarity (each with its score),
    else the latest updated first."""
    asked = {
        "namespace": _namespace("namespace_prefix", namespace_prefix, required=False), "filter": filter,
        "limit": limit, "offset": offset, "query": query,
    }
    await ctx.authorize("store", "search", asked)  # the policy may scope the prefix
    items = await rt.store.asearch(
        _namespace("namespace_prefix", asked["namespace"], required=False), filter=_filter(asked["filter"]),
        limit=asked["limit"], offset=asked["offset"], query=asked["query"], refresh_ttl=refresh_ttl,
    )
    return [item.dict() for item in items]


async def list_namespaces(
    rt, ctx: Context, *, prefix: list[str] | None = None, suffix: list[str] | None = None,
    max_depth: int | None = None, limit: int = 100, offset: int = 0,
) -> list[list[str]]:
    asked = {
        "namespace": _namespace("prefix", prefix, required=False), "suffix": suffix, "max_depth": max_depth,
        "limit": limit, "offset": offset,
    }
    await ctx.authorize("store", "list_namespaces", asked)  # the policy may scope the prefix
    prefix, suffix, max_depth, limit, offset = (asked[k] for k in ("namespace", "suffix", "max_depth", "limit", "offset"))
    namespaces = await rt.store.alist_namespaces(
        prefix=_namespace("prefix", prefix, required=False) or None,
        suffix=_namespace("suffix", suffix, required=False) or None,
        max_depth=max_depth, limit=limit, offset=offset,
    )
    return [list(ns) for ns in namespaces]


async def sweep_expired(rt) -> int:
    """For the queue's housekeeping: delete the items past their TTL (reads already leave them out). A custom
    store (store.path) without a sweep_ttl of its own expires its items as it does, if it does."""
    sweep = getattr(rt.store, "sweep_ttl", None)
    if sweep is None:
        return 0
    deleted = await sweep()
    if deleted:
        log.info("store TTL sweep: deleted %d expired items", deleted)
    return deleted
