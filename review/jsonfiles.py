"""Reading JSON records from the files people actually have, losing nothing silently.

One reader for every shape the team's scripts write (seed 004), told apart by content:

- ``array`` — a JSON array (``json.dump(records, f)``, on one line or pretty-printed);
- ``lines`` — JSON Lines, one record per line;
- ``comma_lines`` — ``json.dumps(record) + ",\\n"`` per record: an array without its brackets (the
  info-extraction script's output, possibly cut off mid-line when a run was interrupted);
- ``object`` — a single record in the file.

Every record comes back with a location a person can find (``file:line``, or ``file#index`` for an
array written on one line) and either its value or the reason it could not be read. Nothing raises
for bad content:

- bytes that are not UTF-8 are tried in ``encoding`` (e.g. ``gbk``) line by line, so a GBK file beside
  UTF-8 files reads with one option; bytes neither can decode fail only the records they are in;
  UTF-16 with a byte-order mark (Notepad's "Unicode") is read as such;
- a syntax error fails its record, and reading resumes at the next line that starts a record;
- NUL characters (raw or ``\\u0000``) are removed, with a note: PostgreSQL stores no NUL in text;
- a record longer than ``IMPORT_MAX_RECORD_CHARS`` is refused with the limit named.
"""
from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

SHAPES = ("array", "lines", "comma_lines", "object")
_DECODER = json.JSONDecoder(strict=False)  # raw control characters inside strings are accepted
_WHITESPACE = re.compile(r"[ \t\r\n\ufeff]*")
# Bytes no encoding could decode are kept as lone surrogates (errors="surrogateescape").
_UNDECODED = re.compile("[\udc80-\udcff]")
_RECORD_START = re.compile(r"^[ \t\ufeff]*[\[{]", re.MULTILINE)


@dataclass
class RawRecord:
    """One record of a file: its value, or why it could not be read, and notes on what was fixed."""

    location: str
    position: int  # the record's index in its file, in file order
    value: Any = None
    error: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class RecordFile:
    """What `read_record_file` found in one file."""

    shape: str
    records: list[RawRecord]
    encoding_used: str = "utf-8"
    error: str = ""  # the whole file could not be read (too large, not readable)


class _Text:
    """A file decoded line by line, with offset → line lookups and the lines that did not decode."""

    def __init__(self, data: bytes, fallback: str | None):
        self.bad_lines: dict[int, str] = {}
        self.fallback_lines = 0
        parts, starts, offset = [], [], 0
        for number, raw in enumerate(data.split(b"\n"), start=1):
            line = raw + b"\n"
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                text = None
                if fallback:
                    try:
                        text = line.decode(fallback)
                        self.fallback_lines += 1
                    except (UnicodeDecodeError, LookupError):
                        text = None
                if text is None:
                    text = line.decode("utf-8", errors="surrogateescape")
                    self.bad_lines[number] = _undecodable_message(line, exc, fallback)
            starts.append(offset)
            parts.append(text)
            offset += len(text)
        self.text = "".join(parts)[:-1]  # the "\n" added after the last line
        self.line_starts = starts

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.line_starts, offset)

    def undecodable_in(self, start: int, end: int) -> tuple[int, str] | None:
        """The first line holding undecodable bytes within text[start:end], with its message."""
        match = _UNDECODED.search(self.text, start, end)
        if match is None:
            return None
        number = self.line_of(match.start())
        return number, self.bad_lines.get(number, "无法解码的字节")


def _undecodable_message(line: bytes, exc: UnicodeDecodeError, fallback: str | None) -> str:
    sample = line[exc.start:exc.start + 4].hex(" ")
    tried = f"UTF-8 和 {fallback}" if fallback else "UTF-8"
    hint = ""
    if not fallback:
        for guess in ("gb18030",):
            try:
                line.decode(guess)
            except UnicodeDecodeError:
                continue
            hint = "，看起来是 GBK 编码：请加 --encoding gbk"
            break
        else:
            hint = "；如果文件不是 UTF-8，请用 --encoding 指明编码（如 gbk）"
    return f"有无法按 {tried} 解码的字节（{sample}）{hint}"


def _strip_nul(value: Any) -> tuple[Any, int]:
    """`value` without NUL characters in any string (keys too), and how many were removed."""
    if isinstance(value, str):
        count = value.count("\x00")
        return (value.replace("\x00", ""), count) if count else (value, 0)
    if isinstance(value, list):
        total, items = 0, []
        for item in value:
            item, n = _strip_nul(item)
            items.append(item)
            total += n
        return items, total
    if isinstance(value, dict):
        total, result = 0, {}
        for key, item in value.items():
            key, n_key = _strip_nul(key)
            item, n_item = _strip_nul(item)
            result[key] = item
            total += n_key + n_item
        return result, total
    return value, 0


def read_record_file(path: Path, rel: str, *, encoding: str | None = None, force_lines: bool = False) -> RecordFile:
    """All records of one file, each with its location; never raises for bad content.

    `encoding` is the fallback for bytes that are not UTF-8. `force_lines` reads the file as JSON
    Lines even when it holds a single record (a `.jsonl` file).
    """
    try:
        size = path.stat().st_size
        if size > settings.IMPORT_MAX_FILE_BYTES:
            return RecordFile("object", [], error=(
                f"文件过大（{size} 字节，上限 {settings.IMPORT_MAX_FILE_BYTES}，设置 IMPORT_MAX_FILE_BYTES）"))
        data = path.read_bytes()
    except OSError as exc:
        return RecordFile("object", [], error=f"无法读取文件：{exc.strerror or exc}")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Windows Notepad's "Unicode": UTF-16 with a BOM
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            pass  # not really UTF-16: reported line by line below
    text = _Text(data, encoding)
    reader = _Parser(text, rel)
    records, shape = reader.parse(force_lines=force_lines)
    used = encoding if text.fallback_lines and encoding else "utf-8"
    return RecordFile(shape, records, encoding_used=used)


class _Parser:
    def __init__(self, text: _Text, rel: str):
        self.t = text
        self.s = text.text
        self.rel = rel
        self.one_line = "\n" not in self.s.strip()
        self.record_indent: int | None = None  # the column array records start at (for resuming)

    def _skip(self, index: int) -> int:
        return _WHITESPACE.match(self.s, index).end()

    def _location(self, offset: int, position: int, in_array: bool) -> str:
        if in_array and self.one_line:
            return f"{self.rel}#{position}"
        return f"{self.rel}:{self.t.line_of(offset)}"

    def _resume(self, after: int, *, in_array: bool) -> int | None:
        """Where reading goes on after a broken record at `after`: in an array, the next line that
        starts a record at the records' indentation; otherwise the next non-blank line."""
        newline = self.s.find("\n", after)
        while newline >= 0:
            start = self._skip_blank(newline + 1)
            if start >= len(self.s):
                return None
            line_start = self.s.rfind("\n", 0, start) + 1
            if not in_array:
                return start
            if self.s[start] in "{[" and (self.record_indent is None or start - line_start == self.record_indent):
                return start
            newline = self.s.find("\n", start)
        return None

    def _skip_blank(self, index: int) -> int:
        """Past spaces and blank lines (but not past the first character of a line's content)."""
        while index < len(self.s) and self.s[index] in " \t\r\n\ufeff":
            index += 1
        return index

    def _record(self, start: int, position: int, in_array: bool) -> tuple[RawRecord, int | None]:
        """The value starting at `start` and the offset after it (None: resume by line)."""
        location = self._location(start, position, in_array)
        try:
            value, end = _DECODER.raw_decode(self.s, start)
        except json.JSONDecodeError as exc:
            return RawRecord(location, position, error=f"不是有效的 JSON（{exc.msg}，第 {self.t.line_of(exc.pos)} 行）"), None
        record = RawRecord(location, position, value=value)
        bad = self.t.undecodable_in(start, end)
        if bad is not None:
            number, message = bad
            record.error, record.value = f"第 {number} 行{message}", None
            if not in_array or not self.one_line:
                record.location = f"{self.rel}:{number}"
            return record, end
        too_large = oversize_message(end - start)
        if too_large:
            record.error, record.value = too_large, None
            return record, end
        record.value, removed = _strip_nul(value)
        if removed:
            record.notes.append(f"去掉了 {removed} 个 NUL 字符（PostgreSQL 不能保存）")
        return record, end

    def parse(self, *, force_lines: bool) -> tuple[list[RawRecord], str]:
        start = self._skip(0)
        if start >= len(self.s):
            return [], "lines" if force_lines else "array"
        if self.s[start] == "[" and not force_lines:
            return self._array(start + 1), "array"
        return self._sequence(start, force_lines)

    def _array(self, index: int) -> list[RawRecord]:
        records: list[RawRecord] = []
        while True:
            index = self._skip(index)
            if index >= len(self.s):
                records.append(RawRecord(f"{self.rel}:{self.t.line_of(index)}", len(records),
                                         error="JSON 数组没有结束（缺少 ]），文件可能不完整"))
                return records
            if self.s[index] == "]":
                return records
            if self.record_indent is None and not self.one_line:
                self.record_indent = index - (self.s.rfind("\n", 0, index) + 1)
            record, end = self._record(index, len(records), in_array=True)
            records.append(record)
            if end is None:
                index = self._resume(index, in_array=True)
                if index is None:
                    return records
                continue
            index = self._skip(end)
            if index < len(self.s) and self.s[index] == ",":
                index += 1

    def _sequence(self, index: int, force_lines: bool) -> tuple[list[RawRecord], str]:
        records: list[RawRecord] = []
        commas = 0
        while index < len(self.s):
            record, end = self._record(index, len(records), in_array=False)
            records.append(record)
            if end is None:
                index = self._resume(index, in_array=False)
                if index is None:
                    break
                continue
            index = self._skip(end)
            if index < len(self.s) and self.s[index] == ",":
                commas += 1
                index = self._skip(index + 1)
        if commas:
            shape = "comma_lines"
        elif len(records) == 1 and not force_lines:
            shape = "object"
        else:
            shape = "lines"
        return records, shape


def iter_ok(records: list[RawRecord]) -> Iterator[RawRecord]:
    return (r for r in records if r.ok)


def oversize_message(size: int) -> str | None:
    """The per-record error for a record (or line) of `size` characters over the import bound, else
    None. Shared by every importer so one setting bounds them all."""
    limit = settings.IMPORT_MAX_RECORD_CHARS
    if size <= limit:
        return None
    return f"记录过大（{size} 字符，上限 {limit}，设置 IMPORT_MAX_RECORD_CHARS）"


def record_size(record: Any) -> int:
    """A parsed record's size in characters, as JSON."""
    return len(json.dumps(record, ensure_ascii=False, default=str))
