"""Every file the product reads is checked against its schema (ivr/schemas):
unknown keys refused, types and formats checked, errors naming file, line and field.

The observations of issue 9 (section 7) are regressions here; the kind (an
unknown key anywhere, in any kind of file) is tested over every mapping of
every real file.
"""

from __future__ import annotations

import doctest
import json
import re
import tomllib
from collections.abc import Callable, Iterator
from datetime import date
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

import ivr.flow.loader
import ivr.schemas
from ivr.citas import reference
from ivr.citas.affiliates import YamlAffiliateDirectory
from ivr.controller import flow_loader
from ivr.flow.loader import flow_field
from ivr.prompts import DEFAULT_TEXTS, PromptFileError, load_prompt_texts
from ivr.scenarios.spec import SCENARIO_DIR, load_scenario
from ivr.schemas import KINDS, FieldNamer, dotted, schema, validate
from ivr.settings import REPO_ROOT
from ivr.yamlsrc import ConfigError, load_yaml

CITAS = reference.CITAS_DIR
FLOWS = REPO_ROOT / "config" / "flows"
FLOW_LOADER = flow_loader()
TODAY = date(2026, 11, 30)
UNKNOWN = "zz_unknown_field"


def load_affiliates(path: Path) -> object:
    return YamlAffiliateDirectory.load(path, TODAY)


# (file, loader, kind of schema, how its errors name fields)
FILES: list[tuple[Path, Callable[[Path], object], FieldNamer]] = [
    *((p, FLOW_LOADER.load, flow_field) for p in sorted(FLOWS.glob("*.yaml"))),
    (CITAS / "line.yaml", reference.load_line, dotted("line")),
    (CITAS / "services.yaml", reference.load_services, dotted("services")),
    (CITAS / "sites.yaml", reference.load_sites, dotted("sites")),
    (CITAS / "eligibility.yaml", reference.load_eligibility, dotted("eligibility")),
    (CITAS / "affiliates.yaml", load_affiliates, dotted("affiliates")),
    *((p, load_scenario, dotted("scenario")) for p in sorted(SCENARIO_DIR.glob("*.yaml"))),
    (DEFAULT_TEXTS, load_prompt_texts, dotted("prompts")),
]
# Maps whose keys are the operator's own data, of any value: an extra key there is data.
FREE_FORM = ["nodes.*.params", "expect.variables", "expect.agent_headers"]


def refused(load: Callable[[Path], object], path: Path, text: str) -> ConfigError:
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load(path)
    return caught.value


def line_of(text: str, needle: str) -> int:
    found = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(found) == 1, (needle, found)
    return found[0]


# --- the observations -------------------------------------------------------------------------
def test_a_misspelled_outcome_in_a_scenario_is_refused_not_ignored(tmp_path: Path) -> None:
    text = (SCENARIO_DIR / "smoke.yaml").read_text(encoding="utf-8")
    assert "  outcome: completed" in text
    bad = text.replace("  outcome: completed", "  outcom: completed")

    err = refused(load_scenario, tmp_path / "smoke.yaml", bad)

    assert (err.line, err.field) == (line_of(bad, "outcom:"), "expect.outcom")
    assert err.problem == "unknown field; did you mean 'outcome'?"


def test_a_misspelled_phone_booking_closed_from_is_refused(tmp_path: Path) -> None:
    # Before: the key was ignored and the site stayed open to phone booking.
    text = (CITAS / "sites.yaml").read_text(encoding="utf-8")
    bad = text.replace(
        'phone_booking_closed_from: "2026-01-01"', 'phone_booking_close_from: "2026-01-01"'
    )
    assert bad != text

    err = refused(reference.load_sites, tmp_path / "sites.yaml", bad)

    assert (err.line, err.field) == (
        line_of(bad, "phone_booking_close_from"),
        "sites.centro.phone_booking_close_from",
    )
    assert "did you mean 'phone_booking_closed_from'" in err.problem


@pytest.mark.parametrize(
    "number",
    [
        "573001112233",
        '"+57 300 111 2233 ext. 4"',
        '"wa.me/573001112233"',
        '"57-300-111-2233"',
        '""',
        "null",
    ],
)
def test_the_whatsapp_number_must_be_a_phone_number_in_quotes(tmp_path: Path, number: str) -> None:
    # The wa.me link is built from this value: an unquoted number, text or
    # punctuation gave a broken link. (Normalising a well-formed number to
    # E.164 is the loader's job, with phonenumbers.)
    text = (CITAS / "line.yaml").read_text(encoding="utf-8")
    bad = text.replace('number: "573001112233"', f"number: {number}")
    assert bad != text

    err = refused(reference.load_line, tmp_path / "line.yaml", bad)

    assert (err.line, err.field) == (line_of(bad, f"number: {number}"), "whatsapp.number")


def test_a_well_formed_whatsapp_number_passes_the_schema() -> None:
    for number in ("573001112233", "+573001112233", "+57 300 111 2233"):
        doc = load_yaml((CITAS / "line.yaml").read_text().replace("573001112233", number), "l")
        validate(doc, "line")


# --- the kind: an unknown key at any depth of any file is refused at its line ----------------
def mappings(tree: Any, at: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(tree, dict):
        yield at
        for key, value in tree.items():
            yield from mappings(value, (*at, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from mappings(value, (*at, index))


def free_form(path: tuple[str | int, ...]) -> bool:
    dotted_path = ".".join(str(step) for step in path)
    return any(fnmatch(dotted_path, pattern) for pattern in FREE_FORM)


def unknown_key_places() -> Iterator[Any]:
    """Every mapping of every file, one test each: the citas flow alone has ~170, and
    one load takes about half a second (YAML parsed with line marks, then the schema),
    so a single test per file ran into the 120 s limit under load."""
    for path, load, field_of in FILES:
        original = yaml.safe_load(path.read_text(encoding="utf-8"))
        places = [p for p in mappings(original) if not free_form(p)]
        assert places, path
        for place in places:
            where = ".".join(str(step) for step in place) or "(top)"
            yield pytest.param(
                path, load, field_of, place, id=f"{path.parent.name}/{path.name}:{where}"
            )


@pytest.mark.parametrize(("path", "load", "field_of", "place"), list(unknown_key_places()))
def test_an_unknown_key_in_any_mapping_is_refused_naming_its_line_and_field(
    tmp_path: Path,
    path: Path,
    load: Callable[[Path], object],
    field_of: FieldNamer,
    place: tuple[str | int, ...],
) -> None:
    tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    target = tree
    for step in place:
        target = target[step]
    target[UNKNOWN] = 7
    text = yaml.safe_dump(tree, allow_unicode=True, sort_keys=False)

    err = refused(load, tmp_path / path.name, text)

    assert (err.line, err.field) == (
        line_of(text, f"{UNKNOWN}:"),
        field_of([*(s if isinstance(s, int) else str(s) for s in place), UNKNOWN]),
    ), (place, str(err))


def test_the_free_form_maps_are_the_ones_the_schemas_leave_open() -> None:
    flow = schema("flow")["$defs"]
    assert flow["action"]["properties"]["params"] == {"type": "object"}
    expect = schema("scenario")["properties"]["expect"]["properties"]
    for name in ("variables", "agent_headers"):
        assert "additionalProperties" in expect[name]  # values typed, keys the tester's own


# --- types, ranges and formats, one table per kind of file -------------------------------------
def edit(name: str, old: str, new: str) -> str:
    source = {"sites.yaml": CITAS, "line.yaml": CITAS, "eligibility.yaml": CITAS,
              "services.yaml": CITAS, "affiliates.yaml": CITAS, "smoke.yaml": SCENARIO_DIR}  # fmt: skip
    text = (source[name] / name).read_text(encoding="utf-8")
    assert old in text, old
    return text.replace(old, new, 1)


LOADERS: dict[str, Callable[[Path], object]] = {
    "sites.yaml": reference.load_sites,
    "line.yaml": reference.load_line,
    "eligibility.yaml": reference.load_eligibility,
    "services.yaml": reference.load_services,
    "affiliates.yaml": load_affiliates,
    "smoke.yaml": load_scenario,
}
# (file, text, text on the line named, field, problem)
BAD_VALUES = {
    "impossible closing date": ("sites.yaml", edit("sites.yaml", '"2026-01-01"', '"2026-13-01"'), "2026-13-01", "sites.centro.phone_booking_closed_from", "must be a date YYYY-MM-DD (got '2026-13-01')"),
    "closing date not a date": ("sites.yaml", edit("sites.yaml", '"2026-01-01"', "soon"), "soon", "sites.centro.phone_booking_closed_from", "must be a date YYYY-MM-DD"),
    "unquoted date is fine but impossible one is not": ("sites.yaml", edit("sites.yaml", '"2026-01-01"', "2026-02-30"), "2026-02-30", "yaml", "not a valid date '2026-02-30'"),
    "site without doctors": ("sites.yaml", edit("sites.yaml", "    doctors:\n      dr_torres: {name: Doctor Pablo Torres, specialty: general}\n", ""), "name: Sede Sur", "sites.sur.doctors", "is required"),
    "vdn unquoted": ("line.yaml", edit("line.yaml", 'incident: "5550002"', "incident: 5550002"), "incident: 5550002", "agent_vdn.incident", "must be digits in quotes"),
    "no offers": ("line.yaml", edit("line.yaml", "max_offers: 5", "max_offers: 0"), "max_offers", "booking.max_offers", "must be at least 1"),
    "search days as text": ("line.yaml", edit("line.yaml", "search_days: 21", "search_days: three"), "search_days", "booking.search_days", "must be int, got str"),
    "age band upside down": ("eligibility.yaml", edit("eligibility.yaml", "{min: 11, max: 54}", "{min: 60, max: 54}"), "age_band", "age_band", "needs min <= max"),
    "age over 130": ("eligibility.yaml", edit("eligibility.yaml", "max: 54", "max: 540"), "age_band", "age_band.max", "must be at most 130"),
    "cups unquoted": ("eligibility.yaml", edit("eligibility.yaml", '"890201", ', "890201, "), "cups_in_scope", "cups_in_scope[0]", "must be a CUPS code in quotes"),
    "plan twice": ("eligibility.yaml", edit("eligibility.yaml", "[PBS]", "[PBS, PBS]"), "plans_in_scope", "plans_in_scope", "has duplicate items"),
    "service key two digits": ("services.yaml", edit("services.yaml", '"5":', '"55":'), '"55"', "services.55", "the key must be one digit"),
    "service without cups": ("services.yaml", edit("services.yaml", ' cups: "890301",', ""), '"2"', "services.2.cups", "is required"),
    "affiliate age and birth date": ("affiliates.yaml", edit("affiliates.yaml", "age: 70,", "age: 70, birth_date: 1956-01-01,"), "Bruno", "affiliates[1]", "give exactly one of: age, birth_date"),
    "affiliate document unquoted": ("affiliates.yaml", edit("affiliates.yaml", '"3030303030"', "3030303030"), "Carla", "affiliates[2].document", "must be a document number in quotes"),
    "affiliate risk not a list": ("affiliates.yaml", edit("affiliates.yaml", "risk: [gestante]", "risk: gestante"), "Diego", "affiliates[3].risk", "must be list, got str"),
    "scenario unknown seed": ("smoke.yaml", edit("smoke.yaml", "name: smoke\n", "name: smoke\nseed: rice\n"), "seed:", "seed", "unknown seed 'rice'; known: agenda, race, appointments"),
    "scenario negative wait": ("smoke.yaml", edit("smoke.yaml", "- wait: 1", "- wait: -1"), "wait: -1", "steps[0].wait", "must be seconds"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "text", "needle", "field", "problem"), BAD_VALUES.values(), ids=BAD_VALUES.keys()
)
def test_bad_values_are_refused_naming_file_line_and_field(
    tmp_path: Path, name: str, text: str, needle: str, field: str, problem: str
) -> None:
    path = tmp_path / name
    err = refused(LOADERS[name], path, text)

    assert (err.file, err.line, err.field) == (str(path), line_of(text, needle), field), str(err)
    assert problem in err.problem
    assert str(err) == f"{path}:{err.line}: {field}: {err.problem}"


def test_a_prompts_file_error_is_a_config_error_too(tmp_path: Path) -> None:
    path = tmp_path / "prompts.yaml"
    path.write_text(
        'goodbye: "Adiós."\nhello: {text: "Hola.", voice_rate: 500}\n', encoding="utf-8"
    )

    with pytest.raises(PromptFileError) as caught:
        load_prompt_texts(path)

    assert isinstance(caught.value, ConfigError)
    assert (caught.value.line, caught.value.field) == (2, "hello.voice_rate")


# --- the mechanism ----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_every_schema_is_valid_json_schema_and_shipped_with_the_package(kind: str) -> None:
    Draft202012Validator.check_schema(schema(kind))
    setuptools = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    # package data: a non-editable install (pip install .) has the schema too
    assert any(fnmatch(f"schemas/{kind}.json", p) for p in setuptools["package-data"]["ivr"])


def test_every_schema_file_is_a_known_kind() -> None:
    shipped = {p.stem for p in Path(ivr.schemas.__file__).parent.glob("*.json")}
    assert shipped == set(KINDS)


def test_list_items_and_nested_keys_are_located() -> None:
    text = "affiliates:\n  - {document: '1', name: A, age: 3, plan: P, site: s}\n\n  - document: '12345'\n    name: B\n    age: 4\n    plan: P\n    site: s\n    risk: [a, 7]\n"
    doc = load_yaml(text, "a.yaml")

    with pytest.raises(ConfigError) as caught:
        validate(doc, "affiliates")

    # best_match: the shallower error (the first entry's document) comes first
    assert (caught.value.line, caught.value.field) == (2, "affiliates[0].document")
    doc["affiliates"][0]["document"] = "12345"
    with pytest.raises(ConfigError) as caught:
        validate(doc, "affiliates")
    assert (caught.value.line, caught.value.field) == (9, "affiliates[1].risk[1]")
    assert caught.value.problem == "must be str, got int"


def test_an_empty_file_is_refused_as_not_a_mapping(tmp_path: Path) -> None:
    err = refused(reference.load_line, tmp_path / "line.yaml", "")

    assert (err.line, err.field, err.problem) == (1, "line", "must be a mapping, got null")


def test_x_messages_name_the_value(tmp_path: Path) -> None:
    text = edit("line.yaml", 'number: "4441234"', 'number: "444-1234"')

    err = refused(reference.load_line, tmp_path / "line.yaml", text)

    assert err.problem == "must be digits in quotes (got '444-1234')"


@pytest.mark.parametrize("module", [ivr.schemas, ivr.flow.loader])
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0


def test_the_schemas_name_every_field_the_real_files_use() -> None:
    # The other direction of "unknown keys are refused": the real files load.
    for path, load, _ in FILES:
        load(path)
    assert json.loads(json.dumps(schema("flow")))  # plain data, nothing generated
    assert re.fullmatch(r"urn:citas:schema:flow", schema("flow")["$id"])


def test_a_misspelled_required_key_is_reported_as_unknown_not_as_missing(tmp_path: Path) -> None:
    # Both errors are true; "did you mean" tells the operator what to fix.
    text = edit("services.yaml", "specialty: pediatrics}", "specialt: pediatrics}")

    err = refused(reference.load_services, tmp_path / "services.yaml", text)

    assert (err.field, err.problem) == (
        "services.3.specialt",
        "unknown field; did you mean 'specialty'?",
    )


def messages(tree: Any) -> Iterator[str]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == "x-message":
                yield value
            elif key == "x-messages":
                yield from value.values()
            else:
                yield from messages(value)
    elif isinstance(tree, list):
        for item in tree:
            yield from messages(item)


@pytest.mark.parametrize("kind", KINDS)
def test_every_message_in_a_schema_formats_with_any_value(kind: str) -> None:
    found = list(messages(schema(kind)))
    for message in found:
        for value in ("x", {"a": "{b}"}, None, 7):
            assert message.format(value=value)
    assert found
