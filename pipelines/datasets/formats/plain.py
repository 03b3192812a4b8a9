"""Rows of plain records, encoded without being built.

A *plain* record is text and nothing else: its prompt and answer (SFT: `response`; preference:
`chosen` and `rejected`) are non-empty strings, and it has no `input`, `system`, `history` or
`images`. Every format turns such records into the same JSON but for the texts, so a plain
record's row is a fixed template with its escaped texts put in: three string joins where
`to_row` + `validate_row` + `encode_row` build, check and walk a dict (a third of a log
extraction's time).

The template is made once per format by those three functions themselves, run on a record of
marker texts, so it says whatever they say. A format whose markers do not come through verbatim
and once each, or whose marker row is not valid, has no template: its rows take the general path.
So does a text that holds "<image>": the one check that judges a row by its texts' values rather
than their types (LLaMA-Factory's literal image token). A check of that kind added to
`validate_row` must be declined here too; tests/pipelines/datasets/test_formats.py compares this
module with the general path, format by format, on texts chosen to break it.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from json.encoder import encode_basestring

from .rowfiles import encode_row
from .spec import IMAGE_TOKEN, FormatError, get_format
from .validation import validate_row
from .writers import to_row

# The texts a plain record has, per kind, and the fields it must not have (empty counts as absent:
# the writers read them as `value or ""`). history and images only count when truthy, as in to_row.
_TEXTS = {"sft": ("prompt", "response"), "preference": ("prompt", "chosen", "rejected")}
_ABSENT_TEXTS = ("input", "system")
_ABSENT_LISTS = ("history", "images")
# Private-use characters: JSON escapes none of them, and no format writes them itself.
_MARKER = "\ue000{}\ue001"


def plain_row_encoder(fmt: str) -> Callable[[dict], str | None]:
    """A function giving a record's row of format `fmt` as `encode_row(to_row(fmt, record, ()))`
    writes it, when the record is plain and the row is valid; None when the record is not plain (or
    the format has no template): the caller then takes the general path, which decides."""
    template = _template(fmt)
    if template is None:
        return _not_plain
    pieces, fields = template
    escape, image_token = encode_basestring, IMAGE_TOKEN
    absent_texts, absent_lists = _ABSENT_TEXTS, _ABSENT_LISTS

    def encode(record: dict) -> str | None:
        texts = []
        for name in fields:  # a loop, not a comprehension: this runs once per record
            text = record.get(name)
            if type(text) is not str or not text or image_token in text:
                return None
            texts.append(escape(text))
        for name in absent_texts:
            value = record.get(name)  # not `in (None, "")`: a value's own == may raise
            if value is not None and (type(value) is not str or value):
                return None
        for name in absent_lists:
            if record.get(name):
                return None
        parts = [pieces[0]]
        for text, piece in zip(texts, pieces[1:]):
            parts += (text, piece)
        return "".join(parts)
    return encode


def _not_plain(record: dict) -> None:
    return None


@functools.cache
def _template(fmt: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(the row's JSON cut at each text, the record field each cut takes), or None."""
    names = _TEXTS[get_format(fmt).kind]
    markers = {encode_basestring(_MARKER.format(name)): name for name in names}
    try:
        row = to_row(fmt, {name: _MARKER.format(name) for name in names}, ())
    except FormatError:
        return None
    if validate_row(fmt, row):
        return None
    # Cut at the markers, kept (a group): the pieces at even places, the markers found at odd ones.
    parts = re.split("(" + "|".join(map(re.escape, markers)) + ")", encode_row(row))
    pieces, found = parts[0::2], parts[1::2]
    if sorted(found) != sorted(markers):  # a text written twice, changed, or not at all
        return None
    if any("\ue000" in piece or "\ue001" in piece for piece in pieces):
        return None
    return tuple(pieces), tuple(markers[marker] for marker in found)
