"""Malformed configuration fuzzed: every bad file is refused with a ``ConfigError``
that names the file and a line, never with another exception.

The inputs are the real files (``config/flows/citas.yaml``, ``config/citas/*.yaml``,
``ivr/scenarios/*.yaml``, ``prompts/prompts.yaml``) mutated by hypothesis: a key deleted, a value of the
wrong type, an unknown field, a dangling node reference, broken YAML, tabs,
duplicate keys, huge numbers, control characters, bytes that are not UTF-8,
an empty file. A mutation may leave a file valid (deleting an optional key):
then it loads. Mutations that can never be valid must be refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ivr.citas import reference
from ivr.citas.affiliates import YamlAffiliateDirectory
from ivr.controller import flow_loader
from ivr.flow.model import targets
from ivr.prompts import DEFAULT_TEXTS, load_prompt_texts
from ivr.scenarios.spec import SCENARIO_DIR, load_scenario
from ivr.settings import REPO_ROOT
from ivr.yamlsrc import ConfigError

FUZZ = settings(
    max_examples=80,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
FLOW_LOADER = flow_loader()
FLOWS = {
    p.name: p.read_text(encoding="utf-8") for p in (REPO_ROOT / "config" / "flows").glob("*.yaml")
}
CITAS = "citas.yaml"
REFERENCE_LOADERS: dict[str, Callable[[Path], object]] = {
    "line.yaml": reference.load_line,
    "services.yaml": reference.load_services,
    "sites.yaml": reference.load_sites,
    "eligibility.yaml": reference.load_eligibility,
}
REFERENCE = {n: (reference.CITAS_DIR / n).read_text(encoding="utf-8") for n in REFERENCE_LOADERS}
SCENARIOS = {p.name: p.read_text(encoding="utf-8") for p in sorted(SCENARIO_DIR.glob("*.yaml"))}
REFERENCE_FIELDS = {"start", "next", "on_failure", "default"}  # plus options/cases/outcomes values


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config-fuzz")


def load_flow(path: Path) -> object:
    return FLOW_LOADER.load(path)


def outcome(load: Callable[[Path], object], path: Path, content: str | bytes) -> str:
    """Load ``content`` from ``path``: "loaded", or "refused" with a well-formed error."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    try:
        load(path)
    except ConfigError as err:
        assert err.file == str(path), err
        assert err.line is not None and 1 <= err.line, f"no line in: {err}"
        assert str(err).startswith(f"{path}:{err.line}: "), err
        assert err.field and err.problem, err
        return "refused"
    return "loaded"


# --- tree mutations (through PyYAML's plain loader and dumper) -------------------------------
Tree = Any
Path_ = tuple[str | int, ...]


def paths(tree: Tree, at: Path_ = ()) -> Iterator[Path_]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield (*at, key)
            yield from paths(value, (*at, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield (*at, index)
            yield from paths(value, (*at, index))


def parent_of(tree: Tree, path: Path_) -> Tree:
    for step in path[:-1]:
        tree = tree[step]
    return tree


ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([10**400, -(10**400), float("inf"), float("-inf"), float("nan"), 1e308]),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@st.composite
def tree_mutation(draw: st.DrawFn, text: str) -> tuple[str, str]:
    """(kind, mutated YAML text): delete, retype or add a field somewhere in the file."""
    tree = yaml.safe_load(text)
    where = draw(st.sampled_from(list(paths(tree))))
    parent = parent_of(tree, where)
    kind = draw(st.sampled_from(["delete", "retype", "unknown_field"]))
    if kind == "delete":
        del parent[where[-1]]
    elif kind == "retype":
        parent[where[-1]] = draw(ODD_VALUES)
    else:
        target = parent if isinstance(parent, dict) else tree
        target["zz_unknown_field"] = draw(ODD_VALUES)
    return kind, yaml.safe_dump(tree, allow_unicode=True, sort_keys=False)


# --- text mutations ---------------------------------------------------------------------------
KEY_LINE = re.compile(r"^\s*[A-Za-z0-9_\"']+\s*:")
ODD_CHARS = st.sampled_from(
    [
        "\x00",
        "\x07",
        "\x1b",
        "\ufffe",
        "\t",
        "{",
        "[",
        "&",
        "*",
        "!",
        "%",
        ":",
        "'",
        '"',
        "|",
        ">",
        "- ",
    ]
)


@st.composite
def text_mutation(draw: st.DrawFn, text: str) -> tuple[str, str | bytes]:
    lines = text.splitlines(keepends=True)
    kind = draw(
        st.sampled_from(
            ["tab", "duplicate_key", "truncate", "insert", "not_utf8", "huge_number", "empty"]
        )
    )
    if kind == "tab":
        content = [
            i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")
        ]
        i = draw(st.sampled_from(content))
        lines[i] = "\t" + lines[i].lstrip(" ")  # a tab where YAML wants spaces
        return kind, "".join(lines)
    if kind == "duplicate_key":
        keyed = [i for i, line in enumerate(lines) if KEY_LINE.match(line)]
        i = draw(st.sampled_from(keyed))
        lines.insert(i + 1, lines[i])
        return kind, "".join(lines)
    if kind == "truncate":
        return kind, text[: draw(st.integers(0, len(text)))]
    if kind == "insert":
        at = draw(st.integers(0, len(text)))
        return kind, text[:at] + draw(ODD_CHARS) + text[at:]
    if kind == "not_utf8":
        at = draw(st.integers(0, len(text)))
        raw = text.encode("utf-8")
        return kind, raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + raw[
            at:
        ]
    if kind == "huge_number":
        numbers = list(re.finditer(r"\b\d+\b", text))
        found = draw(st.sampled_from(numbers))
        huge = draw(st.sampled_from(["9" * 400, "1e999", ".inf", "-.inf", ".nan", "0x" + "f" * 40]))
        return kind, text[: found.start()] + huge + text[found.end() :]
    return kind, ""


ALWAYS_REFUSED_IN_TEXT = {"tab", "duplicate_key", "not_utf8", "empty"}


# --- flows ------------------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_a_mutated_flow_loads_or_is_refused_with_file_and_line(
    workdir: Path, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(FLOWS)))
    kind, text = data.draw(tree_mutation(FLOWS[name]))
    result = outcome(load_flow, workdir / name, text)
    if kind == "unknown_field":
        assert result == "refused"


@st.composite
def flow_text_mutations(draw: st.DrawFn) -> tuple[str, str, str | bytes]:
    name = draw(st.sampled_from(sorted(FLOWS)))
    return (name, *draw(text_mutation(FLOWS[name])))


# Each example crashed the loader with something other than ConfigError before the fix.
@FUZZ
@given(mutation=flow_text_mutations())
@example(mutation=(CITAS, "insert", FLOWS[CITAS].replace("promo_gate:", "promo_gate:\x00", 1)))
@example(mutation=(CITAS, "insert", FLOWS[CITAS] + "\x07"))
@example(mutation=(CITAS, "not_utf8", FLOWS[CITAS].encode() + b"\xff"))
@example(mutation=(CITAS, "insert", FLOWS[CITAS].replace("reason: incident", "reason: 2025-02-30")))
@example(mutation=(CITAS, "insert", FLOWS[CITAS] + "x: " + "[" * 1000 + "]" * 1000 + "\n"))
@example(
    mutation=(
        CITAS,
        "huge_number",
        FLOWS[CITAS].replace("first_digit: 6", "first_digit: " + "9" * 400),
    )
)
def test_broken_flow_text_is_refused_with_file_and_line(
    workdir: Path, mutation: tuple[str, str, str | bytes]
) -> None:
    name, kind, text = mutation
    result = outcome(load_flow, workdir / name, text)
    if kind in ALWAYS_REFUSED_IN_TEXT:
        assert result == "refused", kind


def node_references(tree: Tree) -> list[Path_]:
    found: list[Path_] = [("start",)]
    for node_id, node in tree["nodes"].items():
        for key, value in node.items():
            if key in REFERENCE_FIELDS:
                found.append(("nodes", node_id, key))
            elif key in ("options", "cases", "outcomes"):
                found += [("nodes", node_id, key, k) for k in value]
    return found


@settings(FUZZ, max_examples=40)
@given(data=st.data(), dangling=st.from_regex(r"\A[a-z][a-z0-9_]{0,20}\Z"))
def test_a_dangling_node_reference_is_refused(
    workdir: Path, data: st.DataObject, dangling: str
) -> None:
    tree = yaml.safe_load(FLOWS[CITAS])
    if dangling in tree["nodes"]:
        dangling += "_gone"
    where = data.draw(st.sampled_from(node_references(tree)))
    parent_of(tree, where)[where[-1]] = dangling
    path = workdir / CITAS
    path.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError, match=f"no node '{dangling}'") as caught:
        load_flow(path)
    assert caught.value.file == str(path) and caught.value.line


def test_the_real_flows_load() -> None:
    # The fuzz starts from valid files: they must load as they are.
    for name in FLOWS:
        flow = load_flow(REPO_ROOT / "config" / "flows" / name)
        assert all(t in flow.nodes for n in flow.nodes.values() for _, t in targets(n))  # type: ignore[attr-defined]


# --- regressions found by the fuzz (each raised something other than ConfigError) --------------
REGRESSIONS = {
    "control character": (FLOWS[CITAS].replace("promo_gate:", "promo_gate:\x00", 1), "unacceptable character #x0000"),
    "bell at the end": (FLOWS[CITAS] + "\x07", "unacceptable character #x0007"),
    "not UTF-8": (FLOWS[CITAS].encode() + b"\xff", "not UTF-8 text"),
    "impossible date": (FLOWS[CITAS].replace("reason: incident", "reason: 2025-02-30"), "not a valid date '2025-02-30'"),
    "deep nesting": (FLOWS[CITAS] + "x: " + "[" * 1000 + "]" * 1000 + "\n", "nested too deeply"),
    "infinite timeout": (FLOWS[CITAS].replace("total: 30", "total: .inf"), "must be a finite number"),
    "huge integer timeout": (FLOWS[CITAS].replace("first_digit: 6", "first_digit: " + "9" * 400), "must be a finite number of seconds, at most 600"),
}  # fmt: skip


@pytest.mark.parametrize(("content", "problem"), REGRESSIONS.values(), ids=REGRESSIONS.keys())
def test_regression_flow_refused_with_a_clear_error(
    workdir: Path, content: str | bytes, problem: str
) -> None:
    path = workdir / "regression.yaml"
    assert outcome(load_flow, path, content) == "refused"
    with pytest.raises(ConfigError, match=re.escape(problem)):
        load_flow(path)


def test_regression_a_wrong_type_names_a_mapping_not_a_python_class(workdir: Path) -> None:
    text = FLOWS[CITAS].replace('cases: {"true": incident_queue}', "cases: [incident_queue]")
    path = workdir / CITAS
    path.write_text(text, encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"nodes\.incident_gate\.cases: must be a mapping, got list"
    ):
        load_flow(path)


# --- the citas reference tables ---------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_mutated_reference_tables_load_or_are_refused(workdir: Path, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(REFERENCE)))
    mutation = data.draw(st.sampled_from(["tree", "text"]))
    kind, content = data.draw(
        tree_mutation(REFERENCE[name]) if mutation == "tree" else text_mutation(REFERENCE[name])
    )
    result = outcome(REFERENCE_LOADERS[name], workdir / name, content)
    if mutation == "text" and kind in ALWAYS_REFUSED_IN_TEXT:
        assert result == "refused", kind
    if mutation == "tree" and kind == "unknown_field":
        assert result == "refused", kind  # a site or doctor id needs a mapping: refused too


REFERENCE_REGRESSIONS = {
    "not a mapping": ("line.yaml", "- a list\n", "line: must be a mapping"),
    "unknown placeholder": ("line.yaml", REFERENCE["line.yaml"].replace("{link}", "{link} {name}"), "only {link} may be in braces"),
    "attribute placeholder": ("line.yaml", REFERENCE["line.yaml"].replace("{link}", "{link.x}"), "only {link} may be in braces"),
    "escaped link only": ("line.yaml", REFERENCE["line.yaml"].replace("{link}", "{{link}}"), "must contain {link}"),
    "unknown time zone": ("line.yaml", REFERENCE["line.yaml"].replace("America/Bogota", "America/Atlantis"), "unknown time zone"),
    "time zone is a folder": ("line.yaml", REFERENCE["line.yaml"].replace("America/Bogota", "America"), "unknown time zone"),
    "doctor not a mapping": ("sites.yaml", REFERENCE["sites.yaml"].replace("dr_torres: {name: Doctor Pablo Torres, specialty: general}", "dr_torres: 7"), "sites.sur.doctors.dr_torres: must be a mapping"),
    "service not a mapping": ("services.yaml", 'services:\n  "1": medicina\n', "services.1: must be a mapping"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "content", "problem"), REFERENCE_REGRESSIONS.values(), ids=REFERENCE_REGRESSIONS.keys()
)
def test_regression_reference_refused_with_a_clear_error(
    workdir: Path, name: str, content: str, problem: str
) -> None:
    path = workdir / name
    assert outcome(REFERENCE_LOADERS[name], path, content) == "refused"
    with pytest.raises(ConfigError, match=re.escape(problem)):
        REFERENCE_LOADERS[name](path)


def test_the_real_reference_tables_load(workdir: Path) -> None:
    for name, text in REFERENCE.items():
        assert outcome(REFERENCE_LOADERS[name], workdir / name, text) == "loaded"


# --- tester scenarios -------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_mutated_scenarios_load_or_are_refused(workdir: Path, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(SCENARIOS)))
    mutation = data.draw(st.sampled_from(["tree", "text"]))
    kind, content = data.draw(
        tree_mutation(SCENARIOS[name]) if mutation == "tree" else text_mutation(SCENARIOS[name])
    )
    result = outcome(load_scenario, workdir / name, content)
    if mutation == "text" and kind in ALWAYS_REFUSED_IN_TEXT:
        assert result == "refused", kind


# --- the demo affiliates and the prompts --------------------------------------------------------
OTHER_LOADERS: dict[str, Callable[[Path], object]] = {
    "affiliates.yaml": lambda path: YamlAffiliateDirectory.load(path, date(2026, 11, 30)),
    "prompts.yaml": load_prompt_texts,
}
OTHER = {
    "affiliates.yaml": (reference.CITAS_DIR / "affiliates.yaml").read_text(encoding="utf-8"),
    "prompts.yaml": DEFAULT_TEXTS.read_text(encoding="utf-8"),
}


@FUZZ
@given(data=st.data())
def test_mutated_affiliates_and_prompts_load_or_are_refused(
    workdir: Path, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(OTHER)))
    mutation = data.draw(st.sampled_from(["tree", "text"]))
    kind, content = data.draw(
        tree_mutation(OTHER[name]) if mutation == "tree" else text_mutation(OTHER[name])
    )
    result = outcome(OTHER_LOADERS[name], workdir / name, content)
    if mutation == "text" and kind in ALWAYS_REFUSED_IN_TEXT:
        assert result == "refused", kind
    if mutation == "tree" and kind == "unknown_field" and name == "affiliates.yaml":
        assert result == "refused", kind  # in prompts.yaml a new key is a new prompt
