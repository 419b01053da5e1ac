"""A TOML writer for configuration documents (``connector shops export``): tables,
arrays of tables, strings, numbers, booleans, lists and inline tables; no nulls
(TOML has none: a None value is left out, which means "the default")."""
from __future__ import annotations

import json
import re
from datetime import date, datetime, time
from typing import Any, Mapping

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def dumps(data: Mapping[str, Any]) -> str:
    out: list[str] = []
    _table(out, [], data)
    return "\n".join(out).strip() + "\n"


def _key(key: str) -> str:
    return key if _BARE.fullmatch(key) else json.dumps(key)


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON escapes are valid TOML basic-string escapes
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value if v is not None) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items() if v is not None) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _table(out: list[str], path: list[str], data: Mapping[str, Any], array: bool = False) -> None:
    scalars = {k: v for k, v in data.items()
               if v is not None and not isinstance(v, Mapping) and not _is_table_list(v)}
    if path and (array or scalars or not any(isinstance(v, Mapping) or _is_table_list(v) for v in data.values())):
        name = ".".join(_key(p) for p in path)
        out.append(f"\n[[{name}]]" if array else f"\n[{name}]")
    for key, value in scalars.items():
        out.append(f"{_key(str(key))} = {_value(value)}")
    for key, value in data.items():
        if isinstance(value, Mapping):
            _table(out, path + [str(key)], value)
        elif _is_table_list(value):
            for item in value:
                _table(out, path + [str(key)], item, array=True)
