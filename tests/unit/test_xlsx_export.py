"""Every XLSX the product writes is safe to open in a spreadsheet (ivr/xlsx_export.py).

The rule is the CSVs' (ivr.csv_export.needs_quote / neutralise): these tests read
every written workbook back with openpyxl and check each cell's value and type.
"""

from __future__ import annotations

import re
from io import BytesIO
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from ivr.csv_export import Cell, neutralise
from ivr.xlsx_export import Sheet, sheet_title, write_xlsx, xlsx_bytes

DANGEROUS = ["=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20"]
LEADING = ["", " ", "\n", "\t ", "\xa0", "\u3000"]
PAYLOADS = ["", "1+2", 'HYPERLINK("http://x","clic")', "cmd|' /C calc'!A0", "5"]
FORMULA = re.compile(r"^\s*[=+\-@\t\r\uff1d\uff0b\uff0d\uff20]")


def read_back(data: bytes) -> list[list[tuple[object, str]]]:
    """Every cell of the first sheet as (value, openpyxl data type)."""
    sheet = load_workbook(BytesIO(data)).worksheets[0]
    return [[(c.value, c.data_type) for c in row] for row in sheet.iter_rows()]


def one_cell(cell: Cell) -> tuple[object, str]:
    [[written]] = read_back(xlsx_bytes([Sheet("a", [], [[cell]])]))
    return written


@pytest.mark.parametrize("lead", LEADING)
@pytest.mark.parametrize("first", DANGEROUS)
@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_formula_start_is_quoted_and_typed_as_text(
    lead: str, first: str, payload: str
) -> None:
    text = lead + first + payload
    value, kind = one_cell(text)
    # openpyxl turns "\r" into "\n" only in shared strings it reads back; compare the start
    assert kind == "s" and isinstance(value, str) and value.startswith("'")
    assert len(value) == len(text) + 1


@pytest.mark.parametrize(
    ("cell", "value", "kind"),
    [(-5, -5, "n"), (0, 0, "n"), (-0.25, -0.25, "n"), (1e-05, 1e-05, "n"),
     ("-5", "'-5", "s"), ("+57 300 111 2233", "'+57 300 111 2233", "s"), ("@ana", "'@ana", "s"),
     (float("-inf"), "'-inf", "s"), (float("nan"), "nan", "s"), (True, "True", "s"),
     ("caída del agendador", "caída del agendador", "s"), ("a=b", "a=b", "s")],
)  # fmt: skip
def test_numbers_are_numbers_and_text_is_text(cell: Cell, value: object, kind: str) -> None:
    assert one_cell(cell) == (value, kind)


def test_none_is_an_empty_cell() -> None:
    [[(value, _kind), (after, _)]] = read_back(xlsx_bytes([Sheet("a", [], [[None, "x"]])]))
    assert value is None and after == "x"


@pytest.mark.parametrize("control", ["\x00", "\x07", "\x0b", "\x1b", "\x1f"])
def test_control_characters_xml_cannot_hold_become_the_replacement_character(control: str) -> None:
    # An error message pasted by an advisor may carry an escape byte (observed: "\x1b[31m")
    value, kind = one_cell(f"Error{control}500")
    assert (value, kind) == ("Error\ufffd500", "s")


CHARS = st.sampled_from(
    sorted({*DANGEROUS, *"".join(LEADING), "a", "1", "'", '"', "é", "\x1c", "\n"})
)


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.text(CHARS, max_size=6), min_size=1, max_size=3), min_size=1, max_size=3
    )
)
def test_any_text_reads_back_as_text_never_as_a_formula(rows: list[list[str]]) -> None:
    back = read_back(xlsx_bytes([Sheet("datos", [], rows)]))
    cells = [
        (text, got)
        for row, got_row in zip(rows, back, strict=False)
        for text, got in zip(row, got_row, strict=False)
    ]
    for text, (value, kind) in cells:
        assert kind in ("s", "n")  # never "f" (formula)
        if not text:
            assert value is None
        else:
            expected = neutralise(text)
            assert isinstance(value, str) and isinstance(expected, str)
            assert value.startswith("'") == expected.startswith("'")
            assert not FORMULA.match(value) or value.startswith("'")


def test_header_and_several_sheets_in_order(tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    write_xlsx(path, [Sheet("Uno", ["a", "=b"], [[1, "x"]]), Sheet("Dos", ["c"], [])])
    book = load_workbook(path)
    assert book.sheetnames == ["Uno", "Dos"]
    assert [[c.value for c in r] for r in book["Uno"].iter_rows()] == [["a", "'=b"], [1, "x"]]


@pytest.mark.parametrize(
    ("title", "cleaned"),
    [("Reportes", "Reportes"), ("a/b:c", "a-b-c"), ("[x]*?\\", "-x----"), ("", "Hoja"),
     ("x" * 40, "x" * 31)],
)  # fmt: skip
def test_sheet_titles_are_made_acceptable_to_excel(title: str, cleaned: str) -> None:
    assert sheet_title(title) == cleaned


def test_colliding_or_missing_sheets_are_refused() -> None:
    with pytest.raises(ValueError, match="collide"):
        xlsx_bytes([Sheet("a/b", [], []), Sheet("A-B", [], [])])
    with pytest.raises(ValueError, match="at least one"):
        xlsx_bytes([])
