r"""Every CSV the product writes, safe to open in a spreadsheet (CSV injection).

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a
formula (``=HYPERLINK(…)``, ``=cmd|' /c calc'!A0``), and tab or carriage
return are read as the start of one too. The OWASP rule ("CSV Injection",
owasp.org/www-community/attacks/CSV_Injection): prefix such a cell with a
single quote, which spreadsheets take as "this is text". This module applies
it to every cell of every CSV the product writes (``ivr flags history --csv``,
``GET /api/audit?format=csv``, the benchmark's ``results.csv``); a test keeps
any other CSV writer out of ``ivr/``.

What is neutralised (:func:`needs_quote`):

- text whose first character is ``=``, ``+``, ``-``, ``@``, tab or carriage
  return, also behind leading whitespace (spaces, newlines, no-break spaces,
  any ``str.isspace``), because some spreadsheets trim a cell before judging
  it: a tab or carriage return anywhere in the leading whitespace, or one of
  the others right after it; the full-width forms ``＝ ＋ － ＠`` count too, as
  some East Asian input settings turn them into formulas. Text that is only
  spaces or newlines is left alone;
- text means *every* string, even one that reads as a number (``"-5"``): a
  string came from someone, and ``"-5+cmd|…"`` also starts with ``-5``.

Decision on numbers: a cell given as an ``int`` or a finite ``float`` is
written as the number it is (``-5``, ``-0.25``, ``1e-05``), unquoted. Python
writes such a number with digits, ``.``, ``e`` and signs only, which every
spreadsheet reads as a constant, never as a formula, and quoting it would turn
genuine negative figures (a benchmark's delta) into text nobody can sum.
``nan`` and ``±inf`` are written as text, and so ``-inf`` is neutralised.
Producers keep numeric columns as numbers (never pre-formatted strings).

Why our own code: ``defusedcsv`` (the maintained drop-in) prefixes ``-5``
even when it is a number, does not handle tab, carriage return or leading
whitespace, and rewrites ``|`` inside cells, changing the data.

>>> print(csv_text(["who", "reason", "delta"], [["ana", "=1+2", -5]]), end="")
"who","reason","delta"
"ana","'=1+2",-5
>>> neutralise(" @SUM(A1)"), neutralise(-0.5), neutralise("-0.5"), neutralise(None)
("' @SUM(A1)", -0.5, "'-0.5", '')
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

Cell = str | int | float | None  # bool is an int: written as True / False

FORMULA_STARTS = frozenset("=+-@\t\r") | frozenset("\uff1d\uff0b\uff0d\uff20")  # ＝＋－＠
QUOTE = "'"


def needs_quote(text: str) -> bool:
    """True when a spreadsheet could read ``text`` as the start of a formula."""
    rest = text.lstrip()
    if any(c in "\t\r" for c in text[: len(text) - len(rest)]):
        return True  # a tab or carriage return anywhere in the leading whitespace
    return bool(rest) and rest[0] in FORMULA_STARTS


def neutralise(cell: Cell) -> str | int | float:
    """One cell as written: numbers as numbers, text with the quote when it needs it."""
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return str(cell)
    if isinstance(cell, int) or (isinstance(cell, float) and math.isfinite(cell)):
        return cell
    text = str(cell)
    return QUOTE + text if needs_quote(text) else text


class SpreadsheetCsv:
    """A ``csv.writer`` whose every cell goes through :func:`neutralise` (header too)."""

    def __init__(self, stream: IO[str]) -> None:
        # Text quoted, numbers bare (OWASP also asks for quoted cells; and an unquoted
        # carriage return would split a row when read back).
        self._writer = csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)

    def row(self, cells: Iterable[Cell]) -> None:
        self._writer.writerow([neutralise(c) for c in cells])

    def rows(self, rows: Iterable[Iterable[Cell]]) -> None:
        for cells in rows:
            self.row(cells)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """A whole CSV document as text (``\n`` line ends)."""
    out = io.StringIO()
    writer = SpreadsheetCsv(out)
    if header:
        writer.row(header)
    writer.rows(rows)
    return out.getvalue()


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> None:
    """Write a CSV file (UTF-8; no header line when ``header`` is empty); raises OSError."""
    path.write_text(csv_text(header, rows), encoding="utf-8", newline="")
