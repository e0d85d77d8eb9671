"""Request validation errors worded as the official server words them (JSON-schema style).

    "5 is not of type \"string\"\n\nFailed validating \"type\" in schema[\"properties\"][\"graph_id\"]
     \n\nOn instance[\"graph_id\"]:\n    5"

Path ids that are not UUIDs read "Invalid assistant ID: must be a UUID"; a body that is not
JSON at all reads "Invalid JSON in request body"."""
from __future__ import annotations

import json
import re
from typing import Any

INVALID_JSON = "Invalid JSON in request body"
JSON_TYPES = {
    "string_type": "string", "dict_type": "object", "model_type": "object", "model_attributes_type": "object",
    "list_type": "array", "int_type": "integer", "int_parsing": "integer", "int_from_float": "integer",
    "bool_type": "boolean", "bool_parsing": "boolean", "float_type": "number", "float_parsing": "number",
}
ID_FIELDS = {"assistant_id": "assistant", "thread_id": "thread", "run_id": "run", "cron_id": "cron"}


MAX_ECHO = 200  # characters of an offending value a detail repeats; never a whole (large) body


def _dump(value: Any) -> str:
    try:
        text = json.dumps(value, default=str)
    except ValueError:
        text = repr(value)
    return text if len(text) <= MAX_ECHO else f"{text[:MAX_ECHO]}... ({len(text)} characters)"


def _instance(path: list) -> str:
    return "".join(f"[{_dump(p)}]" for p in path)


def _schema(path: list) -> str:
    return "".join('["items"]' if isinstance(p, int) else f'["properties"][{_dump(p)}]' for p in path)


def _choices(expected: str) -> str:
    names = [f'"{n}"' for n in re.findall(r"'([^']*)'", expected)]
    if len(names) <= 2:
        return " or ".join(names)
    others = len(names) - 2
    return f"{names[0]}, {names[1]} or {others} other candidate{'s' if others > 1 else ''}"


def _message(error: dict, value: Any) -> tuple[str, str]:
    """(first line, JSON-schema keyword) for one pydantic error."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in JSON_TYPES:
        return f'{_dump(value)} is not of type "{JSON_TYPES[kind]}"', "type"
    if kind in ("literal_error", "enum"):
        return f"{_dump(value)} is not one of {_choices(str(ctx.get('expected', '')))}", "enum"
    if kind in ("greater_than_equal", "greater_than"):
        return f"{_dump(value)} is less than the minimum of {ctx.get('ge', ctx.get('gt'))}", "minimum"
    if kind in ("less_than_equal", "less_than"):
        return f"{_dump(value)} is greater than the maximum of {ctx.get('le', ctx.get('lt'))}", "maximum"
    return f"{_dump(value)} is not valid: {error['msg']}", kind


def _walk(body: Any, path: list) -> tuple[list, Any, bool]:
    """The part of `path` that exists in the body, the value there, and whether the rest named a
    union member (pydantic puts the member's type in the location; JSON schema says anyOf)."""
    real, node = [], body
    for segment in path:
        if isinstance(node, dict) and segment in node or (
            isinstance(node, list) and isinstance(segment, int) and segment < len(node)
        ):
            real.append(segment)
            node = node[segment]
        else:
            return real, node, True
    return real, node, False


def describe(error: dict, body: Any = None) -> str:
    """The `detail` for the first validation error of a request whose parsed body is `body`."""
    where, *path = error["loc"] or ("body",)
    kind = error["type"]
    if kind == "json_invalid" or (where == "body" and not path and kind == "missing"):
        return INVALID_JSON
    if path and path[-1] in ID_FIELDS and kind.startswith("uuid"):
        return f"Invalid {ID_FIELDS[path[-1]]} ID: must be a UUID"
    if where != "body":  # a query or path parameter
        first = f'"{path[-1]}" is a required property' if kind == "missing" else _message(error, error.get("input"))[0]
        return f"{first} (in {where} parameter '{error['loc'][-1]}')"
    missing = path[-1] if kind == "missing" else None
    path, value, union = _walk(body, path[:-1] if missing is not None else path)
    if union:
        first, keyword = f"{_dump(value)} is not valid under any of the schemas listed in the 'anyOf' keyword", "anyOf"
    elif missing is not None:  # reported on the object that lacks the property
        first, keyword = f'"{missing}" is a required property', "required"
    else:
        first, keyword = _message(error, value)
    return (
        f'{first}\n\nFailed validating "{keyword}" in schema{_schema(path)}'
        f"\n\nOn instance{_instance(path)}:\n    {_dump(value)}"
    )
