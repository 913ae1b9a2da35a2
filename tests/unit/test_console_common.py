"""Every console page shares ``ivr/ops/console/common.js`` instead of a copy of it.

The kind of fault: a helper copied into each page (the token key, ``api``,
``ApiError``, ``showError``) drifts — one page forgets the 401, another reads a
different token key, another's error box drops the details. Checked over every
console page the package ships (the ones added later too, found by globbing): the
page loads common.js before its own script, and no page script declares one of
common.js's names again (a classic script that did would fail to load at all: the
names share one global scope). Behaviour in a real browser: tests/console.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.ops.api import CONSOLE_ASSETS, CONSOLE_DIR
from ivr.settings import REPO_ROOT

COMMON = CONSOLE_DIR / "common.js"
PAGES = sorted(p for p in (REPO_ROOT / "ivr").glob("*/console/*.html") if "defaults" not in p.parts)
SCRIPTS = sorted(p for p in (REPO_ROOT / "ivr").glob("*/console/*.js") if p != COMMON)
# A top-level declaration: `const X =`, `let X =`, `class X`, `function X(`, `async function X(`.
DECLARATION = re.compile(
    r"^(?:const|let|var|class|function|async function)\s+([A-Za-z_$][\w$]*)", re.MULTILINE
)


def declared(path: Path) -> set[str]:
    return set(DECLARATION.findall(path.read_text(encoding="utf-8")))


def test_common_js_is_a_console_asset_and_declares_the_shared_helpers() -> None:
    assert CONSOLE_ASSETS["common.js"] == "text/javascript"
    assert {"TOKEN_KEY", "ROLE_LEVEL", "ROLE_LABEL", "$", "ApiError", "authHeaders", "api",
            "setupErrors", "showError", "showNotice", "downloadFile", "textCell"} <= declared(COMMON)  # fmt: skip


def test_the_pages_are_found() -> None:
    names = {p.name for p in PAGES}
    assert {"index.html", "cases.html", "tablero.html", "incidents.html", "keywords.html"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_each_page_loads_common_js_first(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    sources = re.findall(r'<script src="([^"]+)"( defer)?></script>', html)
    assert sources, f"{page.name} loads no script"
    assert sources[0] == ("/console/common.js", " defer"), sources
    assert all(defer for _, defer in sources), "all deferred, so they run in order"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_no_page_script_declares_a_shared_name_again(script: Path) -> None:
    assert declared(script) & declared(COMMON) == set()
