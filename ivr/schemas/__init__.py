"""One validation for every YAML file the product reads: JSON Schema.

Each kind of file has a schema shipped in this package (``<kind>.json``, JSON
Schema draft 2020-12): unknown keys are refused, types, ranges and formats
are checked. :func:`validate` checks a document read by
``ivr.yamlsrc`` (``Located`` mappings, ``LocatedList`` sequences) with
the maintained ``jsonschema`` validator, picks the most relevant error
(``jsonschema.exceptions.best_match``) and raises it as a ``ConfigError``
naming the file, the line of the offending key and the field.

What a schema cannot say (a node reference that exists, a prompt with text,
``min <= max``, a time zone that exists) stays in each file's builder.

Messages: a schema may say what the operator reads with ``x-message`` (for
any failing keyword of that sub-schema) or ``x-messages`` (per keyword); both
may name the bad value as ``{value!r}``. Otherwise the message is derived from
the keyword (``unknown field``, ``is required``, ``must be int, got str``...).

>>> from ivr.yamlsrc import load_yaml
>>> doc = load_yaml("services:\\n  '1': {id: mg, name: M, cups: '890201', specialty: general, extra: 1}\\n", "s.yaml")
>>> validate(doc, "services")
Traceback (most recent call last):
...
ivr.yamlsrc.ConfigError: s.yaml:2: services.1.extra: unknown field; known: cups, id, name, specialty
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match, by_relevance

from ivr.yamlsrc import ConfigError, Located, LocatedList, load_yaml_file

KINDS = (
    "flow", "line", "services", "sites", "eligibility", "affiliates", "scenario", "prompts",
    "chat_scenario", "cases", "lexicon", "desk", "scripts",
)  # fmt: skip

FieldPath = Sequence[str | int]
FieldNamer = Callable[[FieldPath], str]

# A misspelled key is both unknown and a missing required key: the unknown one
# says more ("did you mean ...?"), so it wins at the same place.
_RELEVANCE = by_relevance(strong=frozenset({"additionalProperties"}))

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "list",
    "string": "str",
    "integer": "int",
    "number": "number",
    "boolean": "bool",
    "null": "null",
}


@cache
def schema(kind: str) -> dict[str, Any]:
    """The schema of one kind of file (one of ``KINDS``), read from the package data."""
    if kind not in KINDS:
        raise ValueError(f"no schema {kind!r}; known: {', '.join(KINDS)}")
    text = resources.files(__package__).joinpath(f"{kind}.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(schema(kind), format_checker=Draft202012Validator.FORMAT_CHECKER)


def dotted(kind: str) -> FieldNamer:
    """Field names as dotted paths (``services.1.cups``, ``steps[2].dtmf``);
    the document itself is named ``kind``."""

    def name(path: FieldPath) -> str:
        if not path:
            return kind
        out = ""
        for step in path:
            out += f"[{step}]" if isinstance(step, int) else f"{'.' if out else ''}{step}"
        return out

    return name


def validate(document: Any, kind: str, file: str = "", field: FieldNamer | None = None) -> None:
    """Check ``document`` (from ``ivr.yamlsrc``) against the ``kind`` schema.

    ``file`` names the file when ``document`` is not a located mapping (an
    empty file is ``None``); ``field`` turns a path of keys into the field
    named in errors (default: ``dotted(kind)``).
    Raises ``ConfigError(file, line, field, problem)`` for the most relevant error.
    """
    error = best_match(_validator(kind).iter_errors(document), key=_RELEVANCE)
    if error is None:
        return
    name = field or dotted(kind)
    path, problem = _explain(error)
    where = getattr(document, "file", None) or file
    raise ConfigError(where, _line_of(document, path), name(path), problem)


def load_checked(path: Path, kind: str, field: FieldNamer | None = None) -> Located:
    """Read a YAML file and validate it against the ``kind`` schema (whose root is a mapping).

    Raises ``ConfigError`` (unreadable file, broken YAML, schema error)."""
    document = load_yaml_file(path)
    validate(document, kind, str(path), field)
    assert isinstance(document, Located)  # every schema's root is an object
    return document


def _explain(error: ValidationError) -> tuple[list[str | int], str]:
    """(path of the offending field, what is wrong with it) for one jsonschema error."""
    path: list[str | int] = list(error.absolute_path)
    keyword = str(error.validator)
    sub: Any = error.schema if isinstance(error.schema, dict) else {}
    value: Any = error.instance
    rules: Any = error.validator_value
    if "propertyNames" in error.absolute_schema_path:
        path.append(str(value))  # the key itself is wrong: point at it
    elif keyword == "required":
        missing = [k for k in rules if k not in value]
        path.append(missing[0])
        return path, str(sub.get("x-messages", {}).get(keyword, "is required"))
    elif keyword == "additionalProperties" and sub.get("additionalProperties") is False:
        known = sorted(sub.get("properties", {}))
        extra = _extra_keys(value, sub)
        path.append(extra[0])
        told = sub.get("x-messages", {}).get(keyword)
        return path, f"unknown field; {told}" if told else _unknown_field(extra[0], known)
    message = sub.get("x-messages", {}).get(keyword) or sub.get("x-message")
    if message:
        return path, str(message).format(value=value)
    return path, _default_message(error, keyword, value)


def _extra_keys(instance: dict[str, Any], sub: dict[str, Any]) -> list[str]:
    patterns = [re.compile(p) for p in sub.get("patternProperties", {})]
    return [
        k
        for k in instance
        if k not in sub.get("properties", {}) and not any(p.search(k) for p in patterns)
    ]


def _unknown_field(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"unknown field; did you mean {close[0]!r}?"
    return f"unknown field; known: {', '.join(known)}" if known else "unknown field"


def _default_message(error: ValidationError, keyword: str, value: Any) -> str:
    expected: Any = error.validator_value
    match keyword:
        case "type":
            names = [expected] if isinstance(expected, str) else list(expected)
            return f"must be {'/'.join(_TYPE_NAMES[n] for n in names)}, got {_kind_of(value)}"
        case "enum":
            return f"must be one of: {', '.join(str(v) for v in expected)} (got {value!r})"
        case "const":
            return f"must be {expected!r}"
        case "minimum":
            return f"must be at least {expected}"
        case "maximum":
            return f"must be at most {expected}"
        case "exclusiveMinimum":
            return f"must be greater than {expected}"
        case "exclusiveMaximum":
            return f"must be less than {expected}"
        case "minLength":
            return "must not be empty" if expected == 1 else f"needs at least {expected} characters"
        case "maxLength":
            return f"has more than {expected} characters"
        case "minItems":
            return "must not be empty" if expected == 1 else f"needs at least {expected} items"
        case "minProperties":
            return "must not be empty"
        case "uniqueItems":
            return f"has duplicate items: {value!r}"
        case "format":
            return f"{value!r} is not a valid {expected}" + (
                " (YYYY-MM-DD)" if expected == "date" else ""
            )
        case "pattern":
            return f"{value!r} does not have the expected form ({expected})"
    return error.message


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _line_of(document: Any, path: FieldPath) -> int:
    """The line of the last key (or item) of ``path`` that the document still locates."""
    line = getattr(document, "line", 0) or 1
    node = document
    for step in path:
        if isinstance(node, Located) and isinstance(step, str):
            line = node.line_of(step)
            node = node.get(step)
        elif isinstance(node, LocatedList) and isinstance(step, int):
            line = node.line_of(step)
            node = node[step] if 0 <= step < len(node) else None
        else:
            break
    return line
