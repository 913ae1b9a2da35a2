"""Typed readers for ARI JSON objects.

Each reader names the object and the field in its error, so a schema change
in a new Asterisk shows up as "Channel.caller: expected object, got null"
rather than a bare KeyError deep inside a call handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ivr.ari.errors import AriProtocolError

_MISSING = object()


def _fail(where: str, key: str, expected: str, value: object) -> AriProtocolError:
    got = "missing" if value is _MISSING else "null" if value is None else type(value).__name__
    return AriProtocolError(f"{where}.{key}: expected {expected}, got {got}")


def req_str(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key, _MISSING)
    if not isinstance(value, str):
        raise _fail(where, key, "string", value)
    return value


def opt_str(data: Mapping[str, Any], key: str, where: str, default: str = "") -> str:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _fail(where, key, "string", value)
    return value


def req_int(data: Mapping[str, Any], key: str, where: str) -> int:
    value = data.get(key, _MISSING)
    # bool is an int subclass; a JSON true where ARI promises a number is a bug.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(where, key, "integer", value)
    return value


def req_obj(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key, _MISSING)
    if not isinstance(value, Mapping):
        raise _fail(where, key, "object", value)
    return value


def opt_obj(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any] | None:
    if data.get(key) is None:
        return None
    return req_obj(data, key, where)


def str_list(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, key, "list of strings", value)
    return tuple(value)


def str_map(data: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _fail(where, key, "object of strings", value)
    return dict(value)
