r"""Every XLSX the product writes, safe to open in a spreadsheet (formula injection).

The same rule as :mod:`ivr.csv_export`, and the same code (:func:`neutralise`):
a text cell that a spreadsheet could take for a formula (``=HYPERLINK(…)``,
``+cmd``, ``-5``, ``@SUM(…)``, behind any leading whitespace, tab or carriage
return, full-width signs too) gets a leading ``'``; numbers stay numbers.

In an XLSX file a cell's *type* is stored next to its value, so a text cell is
text whatever it starts with, as long as the writer says so. openpyxl does not
always say so: assigning a ``str`` that starts with ``=`` makes it a formula
cell. So every text cell is written with its type forced to string (``"s"``)
**and** the quote prefix: the type keeps Excel and LibreOffice from running it
when the file is opened, the quote keeps it inert when someone edits the cell
or copies the sheet into a CSV (OWASP, "CSV Injection").

XML 1.0 cannot carry most C0 control characters (U+0000–U+0008, U+000B, U+000C,
U+000E–U+001F); openpyxl refuses them (``IllegalCharacterError``). They are
replaced by U+FFFD (the replacement character) so that one odd byte in a
caller's comment never makes the whole export fail; tab, line feed and carriage
return are kept.

Why openpyxl (not xlsxwriter): the tests read the file back with the same
library, and its cell model lets us set the type explicitly.

>>> book = xlsx_bytes([Sheet("Casos", ["caso", "nota"], [["0123458", "=1+2"], [-5, None]])])
>>> book[:2]
b'PK'
>>> [[c for c in row] for row in read_back(book)["Casos"]]
[['caso', 'nota'], ['0123458', "'=1+2"], [-5, None]]
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from openpyxl import Workbook, load_workbook
from openpyxl.utils import get_column_letter

from ivr.csv_export import Cell, neutralise

ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
REPLACEMENT = "\ufffd"
TITLE_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")  # characters Excel refuses in a sheet title
MAX_TITLE = 31  # Excel's limit on a sheet title
MAX_WIDTH = 60  # columns are sized to their content, up to this many characters


@dataclass(frozen=True)
class Sheet:
    """One worksheet: ``title`` (cleaned to Excel's rules), a ``header`` row
    (bold, frozen) and the ``rows``; cells as in :mod:`ivr.csv_export`."""

    title: str
    header: Sequence[str]
    rows: Iterable[Sequence[Cell]]


def sheet_title(title: str) -> str:
    """``title`` as Excel accepts it: no ``[]:*?/\\``, at most 31 characters, not empty."""
    cleaned = TITLE_FORBIDDEN.sub("-", title).strip("'")[:MAX_TITLE]
    return cleaned or "Hoja"


def xml_safe(text: str) -> str:
    """``text`` with the control characters XML 1.0 cannot carry replaced by U+FFFD."""
    return ILLEGAL_XML.sub(REPLACEMENT, text)


def xlsx_bytes(sheets: Sequence[Sheet]) -> bytes:
    """A whole workbook (one worksheet per :class:`Sheet`, in order) as bytes.

    Raises ValueError when ``sheets`` is empty or two titles are the same once cleaned.
    """
    if not sheets:
        raise ValueError("a workbook needs at least one sheet")
    titles = [sheet_title(s.title) for s in sheets]
    if len(set(titles)) != len(titles):
        raise ValueError(f"two sheets would have the same title: {titles}")
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for sheet, title in zip(sheets, titles, strict=True):
        _fill(book.create_sheet(title), sheet)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _fill(ws: object, sheet: Sheet) -> None:
    from openpyxl.styles import Font
    from openpyxl.worksheet.worksheet import Worksheet

    assert isinstance(ws, Worksheet)
    widths: dict[int, int] = {}
    bold = Font(bold=True)
    rows: list[Sequence[Cell]] = [list(sheet.header), *sheet.rows]
    for r, cells in enumerate(rows, start=1):
        for c, raw in enumerate(cells, start=1):
            value = neutralise(raw)
            if isinstance(value, str):
                if value == "":
                    continue  # an empty cell, as the CSV writes it
                value = xml_safe(value)
                cell = ws.cell(row=r, column=c)
                cell.value = value
                cell.data_type = "s"  # text, whatever it starts with: never a formula
            else:
                cell = ws.cell(row=r, column=c, value=value)
            if r == 1:
                cell.font = bold
            widths[c] = max(widths.get(c, 0), len(str(value)))
    if sheet.header:
        ws.freeze_panes = "A2"
    for c, width in widths.items():
        ws.column_dimensions[get_column_letter(c)].width = min(MAX_WIDTH, width + 2)


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
