"""JSON for everything a graph can put in its state: orjson plus a fallback for LangChain objects."""
from __future__ import annotations

import dataclasses
import enum
import sys
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from pydantic import BaseModel

_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS
_WITH_NUMPY = _OPTS | orjson.OPT_SERIALIZE_NUMPY


def _default(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if hasattr(obj, "to_json") and callable(obj.to_json) and hasattr(obj, "lc_serializable"):
        return obj.to_json()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (datetime, UUID)):
        return str(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    if isinstance(obj, BaseException):
        return {"error": type(obj).__name__, "message": str(obj)}
    if hasattr(obj, "_asdict"):
        return obj._asdict()
    if hasattr(obj, "__dict__"):
        return {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    return repr(obj)


def dumps(obj: Any) -> bytes:
    # numpy arrays as lists once numpy is loaded (a value can only be one then). Asked for before, orjson imports
    # numpy the first time it meets an object it does not know (a LangChain message): about 100 ms and 16 MB in a
    # process's first run, for a library no graph of it may use.
    return orjson.dumps(obj, default=_default, option=_WITH_NUMPY if "numpy" in sys.modules else _OPTS)


def to_jsonable(obj: Any) -> Any:
    """The plain-JSON form of a value (what a client would decode)."""
    return orjson.loads(dumps(obj))


loads = orjson.loads
