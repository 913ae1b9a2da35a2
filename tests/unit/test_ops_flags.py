"""The flag registry: types, parsing (JSON and command-line words), value schemas."""

from __future__ import annotations

import doctest
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import ivr.booking.seed
import ivr.citas.flags
import ivr.csv_export
import ivr.ops.cli
import ivr.ops.flags
import ivr.ops.openapi
import ivr.ops.timeline
from ivr.citas.flags import (
    AGE_MAX,
    AGE_MIN,
    CUPS_IN_SCOPE,
    citas_flags,
    flag_registry,
    site_closure_flag,
)
from ivr.citas.reference import load_reference
from ivr.ops.flags import (
    BREAKER_FLAGS,
    INCIDENT_FLAG,
    PLATFORM_FLAGS,
    FlagDef,
    FlagRegistry,
    FlagValueError,
    Role,
    UnknownFlag,
    missing_platform_flags,
)

AGE = FlagDef("age", "int", 10, "An age.", minimum=0, maximum=120)
ROUTE = FlagDef("route", "enum", "whatsapp", "Where.", choices=("whatsapp", "agent"))
CLOSED = FlagDef("closed", "date", None, "Closed from.", nullable=True)
CODES = FlagDef("codes", "codes", ["890201"], "CUPS.")
PROMO = FlagDef("promo", "bool", True, "Promo.")


@pytest.mark.parametrize(
    "module",
    [
        ivr.ops.flags,
        ivr.ops.openapi,
        ivr.ops.cli,
        ivr.ops.timeline,
        ivr.csv_export,
        ivr.citas.flags,
        ivr.booking.seed,
    ],
)
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize(
    ("flag", "raw", "parsed"),
    [
        (PROMO, True, True),
        (PROMO, False, False),
        (AGE, 0, 0),
        (AGE, 120, 120),
        (ROUTE, "agent", "agent"),
        (CLOSED, "2026-01-01", "2026-01-01"),
        (CLOSED, None, None),
        (CODES, ["890301", "890201", "890301"], ["890201", "890301"]),
    ],
)
def test_parse_accepts_values_of_the_flags_type(flag: FlagDef, raw: object, parsed: object) -> None:
    assert flag.parse(raw) == parsed


@pytest.mark.parametrize(
    ("flag", "raw", "says"),
    [
        (PROMO, 1, "expected true or false"),
        (PROMO, "true", "expected true or false"),
        (PROMO, None, "a value is required"),
        (AGE, True, "expected an integer"),
        (AGE, 1.5, "expected an integer"),
        (AGE, -1, "below the minimum 0"),
        (AGE, 121, "above the maximum 120"),
        (ROUTE, "sms", "expected one of whatsapp, agent"),
        (CLOSED, "2026-13-01", "expected a date"),
        (CLOSED, 20260101, "expected a date"),
        (CODES, [], "at least one CUPS code"),
        (CODES, ["12345"], "not CUPS codes"),
        (CODES, "890201", "expected a list"),
    ],
)
def test_parse_refuses_other_values_naming_the_flag(flag: FlagDef, raw: object, says: str) -> None:
    with pytest.raises(FlagValueError, match=says) as caught:
        flag.parse(raw)
    assert str(caught.value).startswith(f"{flag.name}: ")


@pytest.mark.parametrize(
    ("flag", "word", "parsed"),
    [
        (PROMO, "on", True),
        (PROMO, "OFF", False),
        (PROMO, "yes", True),
        (PROMO, "0", False),
        (AGE, " 42 ", 42),
        (ROUTE, "agent", "agent"),
        (CLOSED, "none", None),
        (CLOSED, "2025-03-10", "2025-03-10"),
        (CODES, "890301, 890201", ["890201", "890301"]),
    ],
)
def test_parse_text_reads_command_line_words(flag: FlagDef, word: str, parsed: object) -> None:
    assert flag.parse_text(word) == parsed


@pytest.mark.parametrize(
    ("flag", "word"), [(PROMO, "maybe"), (AGE, "ten"), (AGE, "500"), (ROUTE, "none"), (CODES, "")]
)
def test_parse_text_refuses_bad_words(flag: FlagDef, word: str) -> None:
    with pytest.raises(FlagValueError):
        flag.parse_text(word)


SAMPLES: list[Any] = [
    True, False, None, 0, 1, 5, 11, 54, 120, 121, -1, 3600, 3601, 1.5, "agent", "whatsapp",
    "sms", "2026-01-01", "2026-13-01", "on", [], ["890201"], ["890201", "89020110"], ["12"], [1],
]  # fmt: skip


@pytest.mark.parametrize("flag", list(flag_registry(load_reference())), ids=lambda d: d.name)
def test_value_schema_agrees_with_parse(flag: FlagDef) -> None:
    """The OpenAPI schema and the parser accept the same values (dates: the parser decides)."""
    schema = flag.value_schema()
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for raw in SAMPLES:
        try:
            flag.parse(raw)
            parses = True
        except FlagValueError:
            parses = False
        assert validator.is_valid(raw) == parses, (flag.name, raw)


def test_the_citas_registry_takes_its_defaults_from_the_reference_tables() -> None:
    reference = load_reference()
    registry = flag_registry(reference)
    assert registry.get(AGE_MIN).default == reference.eligibility.age_min
    assert registry.get(AGE_MAX).default == reference.eligibility.age_max
    assert registry.get(CUPS_IN_SCOPE).default == sorted(reference.eligibility.cups_in_scope)
    for site in reference.sites.values():
        closure = registry.get(site_closure_flag(site.id))
        expected = site.phone_booking_closed_from
        assert closure.default == (expected.isoformat() if expected else None)
        assert closure.nullable
    assert registry.get(AGE_MIN).min_role is Role.ADMIN
    assert registry.get("self_service_booking").min_role is Role.OPERATOR


def test_registry_refuses_duplicates_and_bad_defaults_and_names_unknown_flags() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        FlagRegistry([PROMO, PROMO])
    with pytest.raises(FlagValueError):
        FlagRegistry([FlagDef("x", "int", 500, "X.", maximum=10)])
    registry = FlagRegistry([PROMO, AGE])
    with pytest.raises(UnknownFlag) as caught:
        registry.get("nope")
    assert str(caught.value) == "unknown flag 'nope'"
    assert "promo" in registry and "nope" not in registry
    assert registry.names() == ["promo", "age"]


def test_roles_are_ordered_and_parsed() -> None:
    assert Role.VIEWER < Role.OPERATOR < Role.ADMIN
    assert Role.parse("Operator") is Role.OPERATOR
    assert Role.ADMIN.label == "admin"
    with pytest.raises(ValueError, match="unknown role"):
        Role.parse("root")


def test_describe_lists_what_the_console_needs() -> None:
    assert AGE.describe() == {
        "name": "age", "kind": "int", "default": 10, "description": "An age.",
        "min_role": "operator", "group": "behaviour", "nullable": False,
        "minimum": 0, "maximum": 120,
    }  # fmt: skip
    assert ROUTE.describe()["choices"] == ["whatsapp", "agent"]


@pytest.mark.parametrize(
    ("lo", "hi", "broken"),
    [(11, 54, False), (54, 54, False), (0, 0, False), (55, 54, True), (120, 0, True)],
)
def test_the_age_band_rule(lo: int, hi: int, broken: bool) -> None:
    registry = citas_flags(age_min=11, age_max=54, cups_in_scope=["890201"], sites={})
    expected = [f"{AGE_MIN} ({lo}) quedaría por encima de {AGE_MAX} ({hi})"] if broken else []
    assert registry.problems({AGE_MIN: lo, AGE_MAX: hi}) == expected
    assert [r.rule_id for r in registry.rules_reading(AGE_MIN)] == ["eligibility.age_band"]
    assert registry.rules_reading("promo_audio") == ()


def test_defaults_that_break_a_rule_are_refused() -> None:
    with pytest.raises(ValueError, match="the defaults break a rule"):
        citas_flags(age_min=60, age_max=54, cups_in_scope=["890201"], sites={})


def test_site_flags_follow_the_sites() -> None:
    registry = citas_flags(
        age_min=1, age_max=2, cups_in_scope=["890201"], sites={"b": None, "a": date(2025, 1, 1)}
    )
    assert [n for n in registry.names() if n.startswith("site.")] == [
        "site.a.phone_booking_closed_from",
        "site.b.phone_booking_closed_from",
    ]


def test_the_operations_guide_lists_every_flag() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text("utf-8")
    rows = {line.split("`")[1]: line for line in guide.splitlines() if line.startswith("| `")}
    for flag in flag_registry(load_reference()):
        assert flag.name in rows, f"docs/operations.md does not list {flag.name}"
        assert f"| {flag.min_role.label} |" in rows[flag.name], flag.name


def test_the_citas_registry_holds_every_platform_flag_as_the_platform_defines_it() -> None:
    registry = flag_registry(load_reference())

    assert missing_platform_flags(registry) == []
    for definition in (INCIDENT_FLAG, *BREAKER_FLAGS):
        assert registry.get(definition.name) == definition


@pytest.mark.parametrize("left_out", PLATFORM_FLAGS)
def test_a_registry_without_a_platform_flag_is_named_and_refused_by_the_runtime(
    left_out: str,
) -> None:
    from ivr.ops.metrics import Metrics
    from ivr.ops.runtime import OpsRuntime
    from ivr.settings import Settings
    from ivr.store import Database

    registry = FlagRegistry([d for d in (INCIDENT_FLAG, *BREAKER_FLAGS) if d.name != left_out])
    assert missing_platform_flags(registry) == [left_out]
    db = Database("sqlite+aiosqlite:///:memory:")
    with pytest.raises(ValueError, match=f"lack the platform's: {left_out}$"):
        OpsRuntime(Settings(), db, registry, Metrics())
