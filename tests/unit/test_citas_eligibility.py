"""Hidden eligibility, reference tables, and how a slot is read out."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.booking.model import Slot
from ivr.citas.actions import OUTCOMES, whatsapp_link
from ivr.citas.affiliates import YamlAffiliateDirectory
from ivr.citas.eligibility import decide
from ivr.citas.reference import CITAS_DIR, EligibilityTables, load_line, load_reference
from ivr.yamlsrc import ConfigError

TABLES = EligibilityTables(
    11, 54, frozenset({"890201", "890283"}), frozenset({"PBS"}), frozenset({"gestante"})
)


def target(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = dict(
        age=30, risk=frozenset(), cups="890201", plan="PBS", phone_booking_open=True, tables=TABLES
    )
    return {**base, **overrides}


@pytest.mark.parametrize("age", [11, 30, 54])
def test_ages_inside_the_band_are_target(age: int) -> None:
    result = decide(**target(age=age))  # type: ignore[arg-type]
    assert (result.segment, result.route, result.reasons) == ("target", "target_self_service", ())


@pytest.mark.parametrize("age", [10, 55, 70])
def test_ages_outside_the_band_are_non_target(age: int) -> None:
    result = decide(**target(age=age))  # type: ignore[arg-type]
    assert result.segment == "non_target"
    assert result.reasons == (f"age_out_of_band:{age}",)


def test_every_reason_is_recorded_not_just_the_first() -> None:
    result = decide(**target(age=70, risk=frozenset({"gestante", "other"}), cups="999", plan="PAC"))  # type: ignore[arg-type]
    assert result.reasons == (
        "age_out_of_band:70",
        "risk_marking:gestante",
        "cups_not_in_scope:999",
        "plan_not_in_scope:PAC",
    )


def test_closed_site_sends_target_to_digital_channels() -> None:
    result = decide(**target(phone_booking_open=False))  # type: ignore[arg-type]
    assert (result.segment, result.route) == ("target", "target_digital")


def test_closed_site_does_not_change_a_non_target_caller() -> None:
    result = decide(**target(age=80, phone_booking_open=False))  # type: ignore[arg-type]
    assert result.route == "non_target"


def test_reference_tables_load_and_match_the_issue() -> None:
    ref = load_reference()
    assert (ref.eligibility.age_min, ref.eligibility.age_max) == (11, 54)
    assert ref.eligibility.cups_in_scope == {
        "890201",
        "890301",
        "89020110",
        "890283",
        "890383",
        "89020271",
    }
    assert {s.cups for s in ref.services.values()} <= ref.eligibility.cups_in_scope
    assert not ref.sites["centro"].phone_booking_open(date(2026, 11, 23))
    assert ref.sites["norte"].phone_booking_open(date(2026, 11, 23))


def test_sms_text_without_link_placeholder_is_refused(tmp_path: Path) -> None:
    text = (CITAS_DIR / "line.yaml").read_text().replace("{link}", "LINK")
    bad = tmp_path / "line.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_line(bad)
    assert error.value.field == "whatsapp.sms_text" and error.value.file == str(bad)


def test_demo_affiliate_ages_are_relative_to_today() -> None:
    today = date(2026, 11, 23)
    directory = YamlAffiliateDirectory.load(CITAS_DIR / "affiliates.yaml", today)
    ana = directory._by_doc["1010101010"]
    assert ana.age_on(today) == 30 and ana.phone == "+573001234567"


def test_whatsapp_link_opens_a_chat_with_prefilled_text() -> None:
    link = whatsapp_link("+573001112233", "Hola, quiero agendar una cita médica")
    assert (
        link
        == "https://wa.me/573001112233?text=Hola%2C%20quiero%20agendar%20una%20cita%20m%C3%A9dica"
    )


def test_slot_is_read_with_spanish_date_sounds_and_our_prompts() -> None:
    from ivr.citas.actions import CitasActions

    actions = CitasActions.__new__(CitasActions)
    actions.tz = ZoneInfo("America/Bogota")
    # Tuesday 24 November 2026, 15:30 in Bogotá
    starts = datetime(2026, 11, 24, 15, 30, tzinfo=actions.tz)
    slot = Slot("s1", "norte", "dr_gomez", "890201", starts, "afternoon")
    assert actions.slot_media(slot) == [
        "sound:digits/day-2", "sound:digits/24", "sound:digits/es-de", "sound:digits/mon-10",
        "sound:citas/time_at", "sound:digits/3", "sound:digits/and", "sound:digits/30",
        "sound:citas/time_afternoon", "sound:citas/slot_with_doctor", "sound:citas/doctor_dr_gomez",
        "sound:citas/slot_at_site", "sound:citas/site_norte",
    ]  # fmt: skip


def test_every_doctor_and_site_has_a_prompt() -> None:
    from ivr.prompts import load_prompt_texts
    from ivr.settings import REPO_ROOT

    prompts = load_prompt_texts(REPO_ROOT / "prompts" / "prompts.yaml")
    ref = load_reference()
    for site in ref.sites.values():
        assert f"site_{site.id}" in prompts
        for doctor in site.doctors.values():
            assert f"doctor_{doctor.id}" in prompts


def test_the_citas_flow_uses_only_outcomes_actions_offer() -> None:
    from ivr.controller import load_all_flows

    flows = load_all_flows()
    assert set(flows) == {"citas", "smoke"}
    assert set(OUTCOMES) >= {"identify_by_caller_id", "book_slot", "send_whatsapp_sms"}


def test_every_prompt_the_dialplan_plays_has_text() -> None:
    import re

    from ivr.prompts import load_prompt_texts
    from ivr.settings import REPO_ROOT

    prompts = load_prompt_texts(REPO_ROOT / "prompts" / "prompts.yaml")
    dialplan = (REPO_ROOT / "dialplans" / "asterisk" / "extensions.conf").read_text()
    used = set(re.findall(r"citas/([a-z0-9_]+)", dialplan))
    assert used >= {"service_unavailable_agent", "agents_unavailable", "smoke_welcome"}
    assert used <= set(prompts), used - set(prompts)


@pytest.mark.parametrize("entry", ["age: .inf", "age: 30\n    risk: 5", "age: [1]"])
def test_a_bad_affiliate_entry_is_a_config_error_with_its_line(tmp_path: Path, entry: str) -> None:
    from ivr.citas.affiliates import YamlAffiliateDirectory
    from ivr.yamlsrc import ConfigError

    path = tmp_path / "affiliates.yaml"
    path.write_text(
        "affiliates:\n  - document: '1'\n    name: X\n    plan: PBS\n    site: norte\n"
        f"    {entry}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        YamlAffiliateDirectory.load(path, date(2026, 11, 23))
    assert "affiliates.yaml:" in str(err.value)
