"""``ivr config check`` refuses exactly the flows ``ivr serve`` refuses.

Observed (review of issue 9): with ``type_ahead: true`` on the slot offer, from
which a key books, ``ivr flow check`` and ``ivr serve`` refused the flow while
``ivr config check`` said ``ok``: the check built its own flow loader and left
out the committing actions. The kind: any rule the serve-time loader applies
and the check's loader does not. The table holds one broken flow per rule the
loader applies; for each, the check's verdict on the file equals the error the
serve-time loader (``ivr.controller.load_all_flows``) raises.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from ivr.citas.config import check_config_dir
from ivr.controller import load_all_flows
from ivr.settings import REPO_ROOT, Settings
from ivr.yamlsrc import ConfigError

CONFIG = REPO_ROOT / "config"

# (what is broken, text in config/flows/citas.yaml, its replacement)
BROKEN_FLOWS = [
    (
        "type-ahead reaches a commit",
        '    type_ahead: false   # "1" books: only a key pressed after hearing the offer counts\n',
        "    type_ahead: true\n",
    ),
    ("unknown prompt", "prompt: document_not_found\n", "prompt: document_not_fund\n"),
    ("unknown flag", "flag: sms_redirect", "flag: sms_redirekt"),
    ("unknown action", "action: next_slot", "action: next_slots"),
    ("unknown outcome", "outcomes: {ok: eligibility}", "outcomes: {okay: eligibility}"),
    ("unknown node", "    next: declined_route\n", "    next: declined_rout\n"),
    ("unknown field", "    on_failure: ask_document\n", "    on_falure: ask_document\n"),
    (
        "a loop with no way out",
        "    outcomes: {found: offer_slot, none: slots_exhausted_route}\n"
        "    on_failure: booking_down_route\n\n  ask_time_band",
        "    outcomes: {found: next_slot, none: next_slot}\n"
        "    on_failure: next_slot\n\n  ask_time_band",
    ),
]


def serve_verdict(settings: Settings) -> str | None:
    try:
        load_all_flows(settings)
    except ConfigError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize(("broken", "old", "new"), BROKEN_FLOWS, ids=[b[0] for b in BROKEN_FLOWS])
def test_config_check_refuses_what_serve_refuses(
    tmp_path: Path, broken: str, old: str, new: str
) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    flow = config / "flows" / "citas.yaml"
    text = flow.read_text(encoding="utf-8")
    assert text.count(old) == 1, broken
    flow.write_text(text.replace(old, new), encoding="utf-8")
    settings = Settings(config_dir=config)

    at_serve = serve_verdict(settings)
    checks = {c.file: c for c in check_config_dir(config, settings.prompts_file, date.today())}

    assert at_serve is not None, f"{broken}: serve loaded the flow"
    verdict = checks[str(flow)]
    assert verdict.error is not None, f"{broken}: config check said {verdict.note!r}"
    assert str(verdict.error) == at_serve


def test_config_check_and_serve_both_accept_the_shipped_flows() -> None:
    settings = Settings()

    checks = check_config_dir(settings.config_dir, settings.prompts_file, date.today())

    assert serve_verdict(settings) is None
    assert [c.file for c in checks if not c.ok] == []
    assert {Path(c.file).name for c in checks} >= {"citas.yaml", "smoke.yaml"}
