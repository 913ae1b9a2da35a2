"""The affiliate directory is checked against itself and the sites it names.

Observed (review of issue 9): ``ivr config check`` and ``ivr serve`` accepted an
affiliate whose ``site`` is not in ``sites.yaml`` (the schema's own message says
it must be one): at call time the site counted as closed and she was sent to an
agent. They also accepted two entries with one document, the last one silently
winning the lookup. The kind: a reference from a directory entry that resolves
to nothing or to two entries; each row below breaks one entry in one of these
ways, at every position in the shipped directory, and the load names its line.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from ivr.citas.affiliates import YamlAffiliateDirectory
from ivr.citas.config import check_config_dir
from ivr.citas.reference import CITAS_DIR, load_sites
from ivr.settings import REPO_ROOT
from ivr.yamlsrc import ConfigError

TODAY = date(2026, 11, 30)
SITES = load_sites(CITAS_DIR / "sites.yaml")
SHIPPED = (CITAS_DIR / "affiliates.yaml").read_text(encoding="utf-8")
ENTRIES = yaml.safe_load(SHIPPED)["affiliates"]


def entry_line(index: int) -> int:
    """The line of the shipped directory's ``index``-th entry (one per line)."""
    lines = [n for n, text in enumerate(SHIPPED.splitlines(), 1) if text.startswith("  - {")]
    assert len(lines) == len(ENTRIES)
    return lines[index]


def write_with(tmp_path: Path, index: int, old: str, new: str) -> Path:
    lines = SHIPPED.splitlines(keepends=True)
    at = entry_line(index) - 1
    assert old in lines[at], (old, lines[at])
    lines[at] = lines[at].replace(old, new, 1)
    path = tmp_path / "affiliates.yaml"
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("index", range(len(ENTRIES)))
def test_a_site_that_is_not_in_sites_yaml_is_refused(tmp_path: Path, index: int) -> None:
    site = ENTRIES[index]["site"]
    path = write_with(tmp_path, index, f"site: {site},", "site: nowhere,")

    with pytest.raises(ConfigError) as caught:
        YamlAffiliateDirectory.load(path, TODAY, sites=SITES)

    err = caught.value
    assert (err.file, err.line, err.field) == (
        str(path),
        entry_line(index),
        f"affiliates[{index}].site",
    )
    assert "'nowhere' is not a site in sites.yaml" in err.problem


@pytest.mark.parametrize("index", range(1, len(ENTRIES)))
def test_a_document_listed_twice_is_refused(tmp_path: Path, index: int) -> None:
    first = ENTRIES[0]["document"]
    path = write_with(
        tmp_path, index, f'document: "{ENTRIES[index]["document"]}"', f'document: "{first}"'
    )

    with pytest.raises(ConfigError) as caught:
        YamlAffiliateDirectory.load(path, TODAY, sites=SITES)

    err = caught.value
    assert (err.line, err.field) == (entry_line(index), f"affiliates[{index}].document")
    assert f"also affiliates[0] (line {entry_line(0)})" in err.problem


def test_every_shipped_site_and_document_resolves() -> None:
    directory = YamlAffiliateDirectory.load(CITAS_DIR / "affiliates.yaml", TODAY, sites=SITES)

    assert len({e["document"] for e in ENTRIES}) == len(ENTRIES)
    assert {e["site"] for e in ENTRIES} <= set(SITES)
    assert directory is not None


def test_config_check_names_an_affiliate_of_an_unknown_site(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "config", config)
    affiliates = config / "citas" / "affiliates.yaml"
    affiliates.write_text(SHIPPED.replace("site: oriente,", "site: orient,", 1), encoding="utf-8")

    checks = {
        c.file: c for c in check_config_dir(config, REPO_ROOT / "prompts" / "prompts.yaml", TODAY)
    }

    error = checks[str(affiliates)].error
    assert error is not None and error.field == "affiliates[6].site"


# --- one phone, two affiliates ----------------------------------------------------------
# Since numbers are normalised (issue 9 §2), "3001234567" and "+57 300 123 4567" in two
# entries are one number; the lookup silently answered with the last entry, so a
# parent calling from the family phone was taken for the child. A phone shared by
# several affiliates identifies none of them: the caller is asked for the document.
SHARED_FORMS = ["3001234567", "+573001234567", "573001234567", "+57 300 123 4567", "0057 300 123 4567"]


@pytest.mark.parametrize("index", range(1, len(ENTRIES)))
@pytest.mark.parametrize("form", SHARED_FORMS)
async def test_a_phone_shared_by_two_affiliates_identifies_neither(
    tmp_path: Path, index: int, form: str
) -> None:
    own = ENTRIES[index].get("phone")
    old = f'phone: "{own}"' if own else f'document: "{ENTRIES[index]["document"]}"'
    new = f'phone: "{form}"' if own else f'{old}, phone: "{form}"'
    path = write_with(tmp_path, index, old, new)
    directory = YamlAffiliateDirectory.load(path, TODAY, sites=SITES)

    assert await directory.by_phone("+573001234567") is None
    assert await directory.by_phone("3001234567") is None
    found = await directory.by_document(ENTRIES[index]["document"])
    assert found is not None and found.phone == "+573001234567"
    assert (await directory.by_phone("+573002222222") is None) == (index == 1)


async def test_every_shipped_phone_identifies_its_affiliate() -> None:
    directory = YamlAffiliateDirectory.load(CITAS_DIR / "affiliates.yaml", TODAY, sites=SITES)

    for entry in ENTRIES:
        if entry.get("phone"):
            found = await directory.by_phone(entry["phone"])
            assert found is not None and found.document == entry["document"]
