"""A number in a YAML file means what it says, or the file is refused.

Observed (review of issue 9): a tester's scenario with ``caller_id: 0573003333333``
(unquoted) placed its call from ``50869417691``: YAML 1.1 reads a leading 0 as
octal, and ``dial: 04441234`` dialled ``1196700``. The kind: every plain scalar
YAML 1.1 resolves to an integer whose value is not its decimal digits (octal,
hex, binary, base 60, digit separators), in any file the product reads (one
loader: ``ivr.yamlsrc.load_yaml``). Each is refused at its line, asking for
quotes; plain decimal integers, and every form in quotes, load unchanged.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivr.scenarios.spec import SCENARIO_DIR, load_scenario
from ivr.yamlsrc import ConfigError, load_yaml

# Plain scalars YAML 1.1 reads as an integer other than their digits.
NOT_AS_WRITTEN = [
    "0573003333333", "04441234", "00", "-017", "+012", "0x1F", "0b101", "1:30",
    "190:20:30", "3_001_234", "0_1",
]  # fmt: skip
AS_WRITTEN = {"0": 0, "7": 7, "-5": -5, "+12": 12, "3003333333": 3003333333, "4441234": 4441234}


@pytest.mark.parametrize("written", NOT_AS_WRITTEN)
@pytest.mark.parametrize("where", ["value: {}\n", "list: [a, {}]\n", "map:\n  {}: x\n"])
def test_an_integer_not_as_written_is_refused_at_its_line(written: str, where: str) -> None:
    text = "first: 1\n" + where.format(written)

    with pytest.raises(ConfigError) as caught:
        load_yaml(text, "f.yaml")

    err = caught.value
    assert (err.file, err.line, err.field) == ("f.yaml", text.count("\n"), "yaml")
    assert f"{written!r} is not read as written" in err.problem and "quotes" in err.problem


@pytest.mark.parametrize("written", NOT_AS_WRITTEN)
def test_in_quotes_every_form_is_its_text(written: str) -> None:
    assert load_yaml(f'value: "{written}"\n', "f.yaml")["value"] == written


@pytest.mark.parametrize(("written", "value"), AS_WRITTEN.items())
def test_a_plain_decimal_integer_loads(written: str, value: int) -> None:
    assert load_yaml(f"value: {written}\n", "f.yaml")["value"] == value


@pytest.mark.parametrize(
    ("field", "old", "new"),
    [
        ("caller_id", 'caller_id: "+573003333333"', "caller_id: 0573003333333"),
        ("dial", 'dial: "4441234"', "dial: 04441234"),
        ("dtmf", 'dtmf: "1"', "dtmf: 01"),
    ],
)
def test_observed_a_scenario_with_a_leading_zero_number_is_refused(
    tmp_path: Path, field: str, old: str, new: str
) -> None:
    path = tmp_path / "mine.yaml"
    shutil.copyfile(SCENARIO_DIR / "caller-id-international.yaml", path)
    text = path.read_text(encoding="utf-8")
    assert old in text, field
    path.write_text(text.replace(old, new, 1), encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_scenario(path)

    assert caught.value.line == text[: text.index(old)].count("\n") + 1
    assert "quotes" in caught.value.problem
