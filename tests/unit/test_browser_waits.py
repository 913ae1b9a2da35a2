"""The browser tests' waits refuse a wait that cannot fail.

``wait_text(selector, "")`` passed as soon as the element existed: every text
contains the empty string. The desktop's 409 test (stop 20's CI) used it to
wait for a message that was already on the page, hidden and empty, and read
it before the click had been answered.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, cast

import pytest

from tests.chromium import wait_text

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text", ["", None])
def test_an_empty_text_is_refused_before_any_wait(text: Any) -> None:
    with pytest.raises(ValueError, match="cannot fail"):
        wait_text(cast(Any, None), "#guion .script-message", text, 0.1)


def test_no_browser_test_waits_for_an_empty_literal() -> None:
    """Every ``wait_text``/``text_to_be_present_in_element`` call with a literal text has one."""
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name not in {"wait_text", "browser_wait_text", "text_to_be_present_in_element"}:
                continue
            for arg in node.args[1:]:
                if isinstance(arg, ast.Constant) and arg.value == "":
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == [], found
