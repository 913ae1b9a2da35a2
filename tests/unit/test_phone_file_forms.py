"""The phone-number forms the README says a file may use are the ones the loaders take.

Review of issue 9: the README said numbers become E.164 "whatever form a carrier
or a file used", listing ``(300) 123-4567``, which ``line.yaml`` and
``affiliates.yaml`` refuse. It now names the file forms; this test reads them
from the README and loads each in both files, and checks the refused ones are.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from ivr.citas.affiliates import YamlAffiliateDirectory
from ivr.citas.reference import CITAS_DIR, load_line
from ivr.settings import REPO_ROOT
from ivr.yamlsrc import ConfigError

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
SENTENCE = re.search(r"In `affiliates.yaml` and `line.yaml` a number is .*?refused\.", README, re.S)
assert SENTENCE is not None, "README: the phone-number file forms"
ACCEPTED = re.findall(r'`"([^"`]+)"`', SENTENCE.group(0))
REFUSED = ['"300-123-4567"', '"(300) 123-4567"', "3001234567"]
LINE = (CITAS_DIR / "line.yaml").read_text(encoding="utf-8")
AFFILIATES = (CITAS_DIR / "affiliates.yaml").read_text(encoding="utf-8")


def load_both(tmp_path: Path, written: str) -> tuple[str, str | None]:
    line, affiliates = tmp_path / "line.yaml", tmp_path / "affiliates.yaml"
    line.write_text(LINE.replace('number: "573001112233"', f"number: {written}"), encoding="utf-8")
    affiliates.write_text(AFFILIATES.replace('phone: "3001234567"', f"phone: {written}"), encoding="utf-8")
    directory = YamlAffiliateDirectory.load(affiliates, date(2026, 11, 30))
    return load_line(line).whatsapp_number, directory._by_doc["1010101010"].phone


def test_the_readme_names_file_forms() -> None:
    assert len(ACCEPTED) >= 3


@pytest.mark.parametrize("number", ACCEPTED)
def test_every_form_the_readme_names_loads_as_e164(tmp_path: Path, number: str) -> None:
    whatsapp, phone = load_both(tmp_path, f'"{number}"')

    assert whatsapp == phone == "+57" + re.sub(r"\D", "", number)[-10:]


@pytest.mark.parametrize("written", REFUSED)
def test_the_forms_the_readme_refuses_are_refused(tmp_path: Path, written: str) -> None:
    with pytest.raises(ConfigError):
        load_both(tmp_path, written)
