"""The browser tests' waits refuse a wait that cannot fail.

``wait_text(selector, "")`` passed as soon as the element existed: every text
contains the empty string. The desktop's 409 test (stop 20's CI) used it to
wait for a message that was already on the page, hidden and empty, and read
it before the click had been answered.

Every wait goes through ``tests.chromium.wait_for``: a bare ``WebDriverWait``
ignores only ``NoSuchElementException``, and the desktop's script panel, redrawn
while stop 21's end-to-end test read its node, failed that CI with
``StaleElementReferenceException``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from selenium.common.exceptions import StaleElementReferenceException

from tests.chromium import attribute, wait_shown, wait_text

ROOT = Path(__file__).resolve().parents[2]


def syntax_of_the_tests() -> Iterator[tuple[Path, ast.AST]]:
    """Every node of every test module's syntax tree, with its module's path."""
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            yield path, node


class RedrawnOnce:
    """A driver whose page redraws between the first poll's find and read: the first
    poll's element is stale, the next one's is the redrawn element."""

    class Element:
        def __init__(self, stale: bool) -> None:
            self.stale = stale

        def read(self, value: str) -> str:
            if self.stale:
                raise StaleElementReferenceException("redrawn")
            return value

        @property
        def text(self) -> str:
            return self.read("ya no está en ese paso")

        def is_displayed(self) -> bool:
            return not self.stale

        def get_attribute(self, name: str) -> str:
            return self.read("n2" if name == "data-node" else "")

    def __init__(self) -> None:
        self.polls = 0

    def find_elements(self, _by: str, _selector: str) -> list[Element]:
        self.polls += 1
        return [self.Element(stale=self.polls == 1)]


@pytest.mark.parametrize("text", ["", None])
def test_an_empty_text_is_refused_before_any_wait(text: Any) -> None:
    with pytest.raises(ValueError, match="cannot fail"):
        wait_text(cast(Any, None), "#guion .script-message", text, 0.1)


def test_no_browser_test_waits_for_an_empty_literal() -> None:
    """Every ``wait_text``/``text_to_be_present_in_element`` call with a literal text has one."""
    found = []
    for path, node in syntax_of_the_tests():
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if name not in {"wait_text", "browser_wait_text", "text_to_be_present_in_element"}:
            continue
        texts = [*node.args[1:], *(k.value for k in node.keywords if k.arg == "text")]
        for arg in texts:
            if isinstance(arg, ast.Constant) and arg.value == "":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == [], found


def test_an_element_redrawn_while_read_is_not_yet_not_a_failure() -> None:
    """Review: the shared waits read ``e.text`` on elements the page may have replaced
    since (StaleElementReferenceException); selenium's own condition took it as "not yet"."""
    driver = RedrawnOnce()
    wait_text(cast(Any, driver), ".script-message", "ya no está", 5)
    assert driver.polls == 2
    assert wait_shown(cast(Any, RedrawnOnce()), ".script-message", 5) == "ya no está en ese paso"


def test_every_browser_wait_is_wait_for() -> None:
    """No test module but ``tests/chromium.py`` names ``WebDriverWait`` (imported,
    called, or as an attribute): a wait of its own would fail on a redrawn element."""
    found = []
    for path, node in syntax_of_the_tests():
        named = (
            (isinstance(node, ast.Name) and node.id == "WebDriverWait")
            or (isinstance(node, ast.Attribute) and node.attr == "WebDriverWait")
            or (isinstance(node, ast.alias) and node.name == "WebDriverWait")
        )
        if named and path != ROOT / "tests" / "chromium.py":
            found.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}")
    assert found == [], found


def test_wait_for_retries_a_redrawn_element_and_returns_the_value() -> None:
    """``attribute`` finds and reads in one poll: the first poll's element is replaced
    between the two (stale), the second reads the redrawn one."""
    driver = RedrawnOnce()
    assert attribute(cast(Any, driver), "#guion .script-node", "data-node", 5) == "n2"
    assert driver.polls == 2
