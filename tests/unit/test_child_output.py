"""A child process's output is read as text only with ``errors=`` given.

The kind of fault: a ``subprocess`` call that decodes what a child wrote
(``text=True``, ``universal_newlines=True`` or ``encoding=``) with the default
strict error handler. sipp echoes a packet it cannot map to a call into its
stderr (an RTCP report from Asterisk that reached its SIP port: first byte
0x81), and ``ivr call`` died with ``UnicodeDecodeError`` before it printed its
report (CI of 2026-11-30, ``test_calls_spread_over_both_controllers``). The bench
had met the same fault earlier (``ivr.bench.runner.decode_output``).

Every such call in the repository (``ivr``, ``tests``, ``scripts``) is found by
its syntax tree, so a new one without ``errors=`` fails here; the instance is
kept below with a real child writing bytes that are not UTF-8.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.settings import REPO_ROOT

CALLS = {"run", "Popen", "check_output", "check_call", "call"}
DECODING = {"text", "universal_newlines", "encoding"}


def decoding_calls_without_errors(source: str) -> list[int]:
    """Line numbers of ``subprocess.<CALLS>(...)`` calls (or bare ``Popen(...)``,
    ``run(...)`` imported from it) that decode the output without ``errors=``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name not in CALLS:
            continue
        # errors=None is the strict default spelled out: not an error handler.
        given = {
            k.arg for k in node.keywords
            if not (isinstance(k.value, ast.Constant) and k.value.value is None)
        }
        decodes = any(
            k.arg in DECODING and not (isinstance(k.value, ast.Constant) and k.value.value in (False, None))
            for k in node.keywords
        )
        if decodes and "errors" not in given:
            out.append(node.lineno)
    return out


def python_files() -> list[Path]:
    return sorted(
        p for top in ("ivr", "tests", "scripts") for p in (REPO_ROOT / top).rglob("*.py")
    )


def test_the_check_sees_every_spelling_of_decoding_and_accepts_errors_given() -> None:
    bad = [
        "subprocess.run(c, capture_output=True, text=True)",
        "subprocess.Popen(c, stdout=PIPE, universal_newlines=True)",
        "subprocess.check_output(c, encoding='utf-8')",
        "Popen(c, text=True)",
        "subprocess.run(c, text=True, errors=None)",
    ]
    good = [
        "subprocess.run(c, capture_output=True, text=True, errors='replace')",
        "subprocess.run(c, capture_output=True)",
        "subprocess.run(c, text=False)",
        "subprocess.check_output(c, encoding='utf-8', errors='replace')",
    ]
    for line in bad:
        assert decoding_calls_without_errors(line) == [1], line
    for line in good:
        assert decoding_calls_without_errors(line) == [], line


def test_no_child_output_is_decoded_strictly_in_the_repository() -> None:
    files = python_files()
    assert len(files) > 100  # the walk reached the packages
    strict = {
        str(p.relative_to(REPO_ROOT)): lines
        for p in files
        if p != Path(__file__)  # its instance test calls the strict default on purpose
        and (lines := decoding_calls_without_errors(p.read_text(encoding="utf-8")))
    }
    assert strict == {}, f"add errors='replace' (or read bytes): {strict}"


@pytest.mark.parametrize("data", [b"\x81\xc8\x00\x0c", b"ok \x80 ok\n", b"\xff\xfe"])
def test_the_instance_a_child_writing_non_utf8_to_stderr_is_read(data: bytes) -> None:
    """What ``ivr.scenarios.runner.place`` does with sipp, with a real child: the
    strict default raised on these bytes; ``errors="replace"`` reads them."""
    code = f"import sys; sys.stderr.buffer.write({data!r}); sys.stdout.write('done')"
    with pytest.raises(UnicodeDecodeError):
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=30, check=True)  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, errors="replace",
        timeout=30, check=True,
    )  # fmt: skip
    assert proc.stdout == "done"
    assert proc.stderr == data.decode("utf-8", errors="replace")
