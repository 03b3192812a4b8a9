"""Safe cells for CSV and XLSX exports (formula injection, a.k.a. CSV injection).

Excel, WPS and LibreOffice run a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula
(``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``), and a leading tab or carriage return can hide such a
prefix from a reader. Imported text and model output may contain anything, so every CSV/XLSX
export passes its cells through ``neutralize_cell``: a dangerous text cell gets a leading
apostrophe, which spreadsheets show as text and do not evaluate.
"""
import csv
import re
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
# Fullwidth forms some spreadsheet apps also accept when the input method is left in CJK mode.
FULLWIDTH_PREFIXES = ("＝", "＋", "－", "＠")
# Plain numbers such as "-3" or "+1.5" are data, not formulas: leave them readable.
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)*(?:[eE][+-]?\d+)?%?")


def neutralize_cell(value: Any) -> Any:
    """Return `value` unchanged unless it is text a spreadsheet would run as a formula.

    Numbers, booleans, None and dates pass through; a string starting (after optional spaces)
    with = + - @ (or their fullwidth forms), tab, CR or LF is prefixed with an apostrophe.
    """
    if not isinstance(value, str) or not value:
        return value
    stripped = value.lstrip(" ")
    if not stripped:
        return value
    if _PLAIN_NUMBER.fullmatch(stripped):
        return value
    if value[0] in FORMULA_PREFIXES or stripped.startswith(FORMULA_PREFIXES + FULLWIDTH_PREFIXES):
        return "'" + value
    return value


def neutralize_row(row: Iterable[Any]) -> list[Any]:
    """`neutralize_cell` applied to every cell of a row."""
    return [neutralize_cell(value) for value in row]


def _writer(file) -> Any:
    # Every field quoted and CRLF line ends: Excel and WPS read CJK text with commas, quotes and
    # newlines from that without surprises.
    return csv.writer(file, quoting=csv.QUOTE_ALL, lineterminator="\r\n")


def write_csv(file: TextIO, header: Iterable[str], rows: Iterable[Iterable[Any]]) -> int:
    """Write a header and rows as CSV with every cell neutralised; returns the number of rows.

    Open `file` with ``newline=""``; write a UTF-8 BOM first (``encoding="utf-8-sig"``) if Excel
    on Windows must detect the encoding.
    """
    writer = _writer(file)
    writer.writerow(neutralize_row(header))
    count = 0
    for row in rows:
        writer.writerow(neutralize_row(row))
        count += 1
    return count


class _Line:
    """A file whose write() hands the text back, so csv.writer can feed a generator."""

    def write(self, text: str) -> str:
        return text


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The CSV text of a header and rows, one line at a time (for a streamed download), every cell
    neutralised; starts with a UTF-8 BOM so that Excel on Windows reads the Chinese correctly."""
    writer = _writer(_Line())
    yield "\ufeff" + writer.writerow(neutralize_row(header))
    for row in rows:
        yield writer.writerow(neutralize_row(row))
