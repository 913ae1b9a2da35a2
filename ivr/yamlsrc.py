"""YAML loading that remembers where each key came from.

A bad configuration file must fail at start with file, line and field.
PyYAML's safe loader drops positions, so mappings are built as ``Located``
dicts that keep the line of every key, and sequences as ``LocatedList`` lists
that keep the line of every item (``ivr.schemas`` maps a schema error's path
to a line through them).

Timestamps stay the text they were written as (an impossible date such as
``2025-02-30`` is still refused here): JSON Schema has no date type, so a
date field is a string with ``format: date`` and its builder parses it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration file is invalid; the message names file, line and field."""

    def __init__(self, file: str, line: int | None, field: str, problem: str) -> None:
        self.file, self.line, self.field, self.problem = file, line, field, problem
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field}: {problem}")


class Located(dict[str, Any]):
    """A mapping from a YAML file that knows its own line and each key's line."""

    file: str = "<string>"
    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LocatedList(list[Any]):
    """A sequence from a YAML file that knows its own line and each item's line."""

    file: str = "<string>"
    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


class _LocatingLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LocatingLoader, node: yaml.MappingNode) -> Located:
    loader.flatten_mapping(node)
    result = Located()
    result.file = loader.name
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, bool) and isinstance(key_node, yaml.ScalarNode):
            # YAML 1.1 reads `yes:`/`no:` keys as booleans; a flow means the word.
            key = key_node.value
        if not isinstance(key, str | int):
            raise ConfigError(
                loader.name, key_node.start_mark.line + 1, str(key), "keys must be text"
            )
        key = str(key)
        if key in result:
            raise ConfigError(loader.name, key_node.start_mark.line + 1, key, "duplicate key")
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _LocatingLoader, node: yaml.SequenceNode) -> LocatedList:
    result = LocatedList(loader.construct_object(item, deep=True) for item in node.value)
    result.file = loader.name
    result.line = node.start_mark.line + 1
    result.item_lines = [item.start_mark.line + 1 for item in node.value]
    return result


def _construct_timestamp(loader: _LocatingLoader, node: yaml.ScalarNode) -> str:
    # An unquoted 2025-02-30 looks like a date to YAML and fails with a bare ValueError.
    try:
        loader.construct_yaml_timestamp(node)
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"not a valid date {node.value!r}: {exc}", node.start_mark
        ) from None
    return str(node.value)


# A plain decimal integer: the only integer form YAML 1.1 reads as its own digits.
_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")


def _construct_int(loader: _LocatingLoader, node: yaml.ScalarNode) -> int:
    # YAML 1.1 reads 0573... as octal, 0x1F as hex, 1:30 as base 60 and drops "_":
    # an unquoted phone number, document or key sequence would silently change.
    value: int = loader.construct_yaml_int(node)
    if not _DECIMAL.fullmatch(node.value):
        raise yaml.constructor.ConstructorError(
            None, None,
            f"{node.value!r} is not read as written (YAML makes it the number {value}): "
            "put it in quotes",
            node.start_mark,
        )  # fmt: skip
    return value


_LocatingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LocatingLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence
)
_LocatingLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
_LocatingLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_yaml(text: str, file: str) -> Any:
    """Parse ``text`` (named ``file`` in errors): ``Located``/``LocatedList`` for
    mappings and sequences, plain scalars, timestamps as their text.

    Raises ``ConfigError`` for broken YAML, control characters, duplicate or
    non-text keys, impossible dates and unquoted integers YAML would not read as
    written (``0573…`` octal, ``0x…``, ``1:30``, ``1_000``)."""
    try:
        loader = _LocatingLoader(text)  # checks every character first
    except yaml.reader.ReaderError as exc:  # a control character: no mark, a position
        at = text.count("\n", 0, exc.position) + 1
        raise ConfigError(
            file, at, "yaml", f"unacceptable character #x{exc.character:04x}"
        ) from None
    loader.name = file
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ConfigError(file, line, "yaml", str(exc.problem or exc)) from None
    except RecursionError:
        raise ConfigError(file, loader.get_mark().line + 1, "yaml", "nested too deeply") from None
    finally:
        loader.dispose()


def load_yaml_file(path: Path) -> Any:
    """``load_yaml`` of a UTF-8 file; an unreadable or non-UTF-8 file is a ``ConfigError``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), None, "file", f"cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(str(path), line, "file", f"not UTF-8 text: {exc.reason}") from None
    return load_yaml(text, str(path))
