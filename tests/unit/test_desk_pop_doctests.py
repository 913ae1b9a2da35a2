"""The screen pop modules' docstring examples run (they document shapes and rules)."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

import ivr.citas.desk
import ivr.desk.events
import ivr.desk.pop
import ivr.desk.push


@pytest.mark.parametrize("module", [ivr.desk.events, ivr.desk.pop, ivr.desk.push, ivr.citas.desk],
                         ids=lambda m: m.__name__)  # fmt: skip
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0, result
