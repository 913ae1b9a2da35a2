"""Every XLSX the product writes, with the same formula-injection rule as its CSVs.

One rule for both exports: each cell goes through :func:`ivr.csv_export.neutralise`
(so :func:`ivr.csv_export.needs_quote` decides), which writes text that a
spreadsheet could take for a formula (``=``, ``+``, ``-``, ``@``, tab, carriage
return, also behind leading whitespace, full-width forms) with a leading
single quote, keeps ``int`` and finite ``float`` as numbers, and writes ``nan``
and ``±inf`` as text. The same report therefore reads the same in its CSV and
its XLSX, and a cell copied out of Excel into a CSV stays harmless.

Two things only XLSX needs:

- every text cell is *typed* as a string (``data_type = "s"``): openpyxl would
  otherwise store a value starting with ``=`` as a formula. After
  neutralisation none does; the type is set anyway, so the rule does not rest
  on one check;
- XML 1.0 cannot hold control characters other than tab, line feed and
  carriage return (openpyxl raises ``IllegalCharacterError``): they are
  replaced with U+FFFD, the Unicode replacement character, so a stray byte in
  an error message copied by an advisor never breaks an export.

A sheet's title is cut to Excel's 31 characters, and ``[ ] : * ? / \\`` in it
become ``-`` (Excel refuses them, and a title that starts or ends with ``'``).
The header row is bold and frozen. :func:`read_back` opens a workbook the way a
spreadsheet loads it, for the tests and checks of every export.

Why openpyxl (not xlsxwriter): it writes and also reads XLSX, so the tests
open every file the product writes with the same library and check each cell's
value and type; its write-only mode streams rows without keeping the sheet in
memory.

>>> from io import BytesIO
>>> from openpyxl import load_workbook
>>> data = xlsx_bytes([Sheet("Reportes", ["who", "reason", "delta"], [["ana", "=1+2", -5]])])
>>> sheet = load_workbook(BytesIO(data)).active
>>> [[c.value for c in row] for row in sheet.iter_rows()]
[['who', 'reason', 'delta'], ['ana', "'=1+2", -5]]
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell as XlsxCell
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from ivr.csv_export import Cell, neutralise

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_TITLE = 31  # Excel's limit on a sheet's name
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ILLEGAL_TITLE = re.compile(r"[\[\]:*?/\\]")
REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class Sheet:
    """One worksheet: its title, a header row (may be empty) and the rows of cells."""

    title: str
    header: Sequence[str]
    rows: Iterable[Sequence[Cell]]


def sheet_title(title: str) -> str:
    """``title`` as Excel accepts it (at most 31 characters, none of ``[]:*?/\\``).

    >>> sheet_title("Reportes: enero/febrero 2026 [borrador]")
    'Reportes- enero-febrero 2026 -b'
    """
    cleaned = _ILLEGAL_TITLE.sub("-", title).strip().strip("'")[:MAX_TITLE]
    return cleaned or "Hoja"


def xml_safe(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot carry replaced by U+FFFD."""
    return _ILLEGAL_XML.sub(REPLACEMENT, text)


def xlsx_cell(sheet: WriteOnlyWorksheet, cell: Cell, *, bold: bool = False) -> XlsxCell:
    """One cell as written: neutralised as in the CSVs, text typed as text."""
    value = neutralise(cell)
    written = WriteOnlyCell(sheet)
    if bold:
        written.font = Font(bold=True)
    if value == "":
        return written  # an empty cell (openpyxl would write an empty inline string)
    if isinstance(value, str):
        written.value = xml_safe(value)
        written.data_type = "s"
    else:
        written.value = value
    return written


def xlsx_bytes(sheets: Sequence[Sheet]) -> bytes:
    """A whole workbook (one sheet per :class:`Sheet`, in order) as bytes.

    Raises ValueError when ``sheets`` is empty or two titles collide once cleaned.
    """
    if not sheets:
        raise ValueError("a workbook needs at least one sheet")
    titles = [sheet_title(s.title) for s in sheets]
    if len({t.lower() for t in titles}) != len(titles):
        raise ValueError(f"sheet titles collide: {titles}")
    book = Workbook(write_only=True)
    for spec, title in zip(sheets, titles, strict=True):
        sheet = book.create_sheet(title)
        if spec.header:
            sheet.freeze_panes = "A2"
            sheet.append([xlsx_cell(sheet, h, bold=True) for h in spec.header])
        for row in spec.rows:
            sheet.append([xlsx_cell(sheet, c) for c in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def write_xlsx(path: Path, sheets: Sequence[Sheet]) -> None:
    """Write a workbook file; raises OSError, or ValueError as :func:`xlsx_bytes`."""
    path.write_bytes(xlsx_bytes(sheets))


def read_back(data: bytes) -> dict[str, list[list[str | int | float | None]]]:
    """Each sheet's cell values, as a spreadsheet would load them (for tests and checks).

    Raises ``zipfile.BadZipFile`` or ``KeyError`` for bytes that are not an XLSX workbook.
    """
    book = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    found: dict[str, list[list[str | int | float | None]]] = {}
    for ws in book.worksheets:
        found[ws.title] = [
            [c if isinstance(c, str | int | float) or c is None else str(c) for c in row]
            for row in ws.iter_rows(values_only=True)
        ]
    book.close()
    return found
