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

Files are streamed (`iter_record_file`): the reader holds a window of about two records' worth of
text (at most a few times ``IMPORT_MAX_RECORD_CHARS``), never the file, so a 1 GB ``train.json`` on
one line needs no more memory than a small one. `read_record_file` collects a file's records in a list.
"""
from __future__ import annotations

import codecs
import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings

_DECODER = json.JSONDecoder(strict=False)  # raw control characters inside strings are accepted
_WHITESPACE = re.compile(r"[ \t\r\n\ufeff]*")
# Bytes no encoding could decode are kept as lone surrogates (errors="surrogateescape").
_UNDECODED = re.compile("[\udc80-\udcff]")
_BYTE_SPACE = b" \t\r\n\x0b\x0c"
BLOCK_BYTES = 1 << 20  # read and decode this much at a time
# A line longer than LONG_LINE_BYTES (a whole array on one line) is decoded in pieces of about that
# size, each cut after one of these bytes: none of them can be part of a multi-byte character in
# UTF-8, GBK, GB18030, Big5 or Shift-JIS. (Each piece then decides on its own between UTF-8 and the
# fallback encoding.)
LONG_LINE_BYTES = 8 << 20
_SAFE_CUTS = (b'"', b",", b":")


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

    shape: str  # "array", "lines", "comma_lines" or "object"
    records: list[RawRecord]
    encoding_used: str = "utf-8"
    error: str = ""  # the whole file could not be read (too large, not readable)


class _Decoded:
    """A binary file as text, a block at a time: each line is UTF-8, else the fallback encoding, else
    kept with its undecodable bytes as lone surrogates (and reported by line)."""

    def __init__(self, fh: IO[bytes], fallback: str | None):
        self.fh = fh
        self.fallback = fallback
        self.carry = b""
        self.eof = False
        self.line = 1  # the line number of the next text returned
        self.bad_lines: dict[int, str] = {}
        self.fallback_lines = 0

    def _segment(self) -> bytes | None:
        """The next whole lines, or a safely cut piece of a line longer than a block."""
        while True:
            if self.eof:
                segment, self.carry = self.carry, b""
                return segment or None
            block = self.fh.read(BLOCK_BYTES)
            if not block:
                self.eof = True
                continue
            data = self.carry + block if self.carry else block
            newline = data.rfind(b"\n")
            if newline >= 0:
                self.carry = data[newline + 1:]
                return data[:newline + 1]
            if len(data) >= LONG_LINE_BYTES:
                cut = max(data.rfind(mark) for mark in _SAFE_CUTS)
                if cut >= 0:
                    self.carry = data[cut + 1:]
                    return data[:cut + 1]
            self.carry = data

    def read(self) -> str | None:
        segment = self._segment()
        if segment is None:
            return None
        try:
            text = segment.decode("utf-8")
        except UnicodeDecodeError:
            text = self._decode_by_line(segment)
        self.line += segment.count(b"\n")
        return text

    def _decode_by_line(self, segment: bytes) -> str:
        parts = []
        raws = segment.split(b"\n")
        for offset, raw in enumerate(raws):
            line = raw + b"\n" if offset < len(raws) - 1 else raw
            if not line:
                continue
            try:
                parts.append(line.decode("utf-8"))
                continue
            except UnicodeDecodeError as exc:
                error = exc
            text = None
            if self.fallback:
                try:
                    text = line.decode(self.fallback)
                    self.fallback_lines += 1
                except (UnicodeDecodeError, LookupError):
                    text = None
            if text is None:
                text = line.decode("utf-8", errors="surrogateescape")
                # A line longer than a block comes in pieces: its first bad bytes are reported.
                self.bad_lines.setdefault(self.line + offset, _undecodable_message(line, error, self.fallback))
            parts.append(text)
        return "".join(parts)


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


class _Window:
    """The part of a file's text being parsed, with absolute offsets and line numbers."""

    TRIM_CHARS = 1 << 20

    def __init__(self, decoded: _Decoded):
        self.decoded = decoded
        self.s = ""
        self.base = 0  # absolute offset of s[0]
        self.eof = False
        self.counted_at = 0  # absolute offset up to which newlines were counted …
        self.counted_line = 1  # … and the line number there

    @property
    def end(self) -> int:
        return self.base + len(self.s)

    def fill(self, upto: int) -> None:
        """Read until the window reaches absolute offset `upto` (or the end of the file)."""
        if self.end >= upto or self.eof:
            return
        parts = [self.s]
        end = self.end
        while end < upto:
            text = self.decoded.read()
            if text is None:
                self.eof = True
                break
            parts.append(text)
            end += len(text)
        self.s = "".join(parts)

    def trim(self, keep: int) -> None:
        """Forget the text before absolute offset `keep` once enough has been read past."""
        if keep - self.base < self.TRIM_CHARS:
            return
        self.line_of(keep)  # the line count must not lose what is cut
        self.s = self.s[keep - self.base:]
        self.base = keep

    def line_of(self, offset: int) -> int:
        if offset >= self.counted_at:
            self.counted_line += self.s.count("\n", self.counted_at - self.base, offset - self.base)
            self.counted_at = offset
            return self.counted_line
        return self.counted_line - self.s.count("\n", offset - self.base, self.counted_at - self.base)

    def skip(self, index: int) -> int:
        """Past whitespace (and BOMs) from absolute `index`."""
        while True:
            end = _WHITESPACE.match(self.s, index - self.base).end() + self.base
            if end < self.end or self.eof:
                return end
            self.fill(end + self.TRIM_CHARS)
            index = end

    def char(self, index: int) -> str:
        return self.s[index - self.base] if index < self.end else ""


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


class RecordStream:
    """The records of one file, read as they are iterated. After iterating: `shape`, `encoding_used`,
    and `error` when the whole file could not be read (then no record is produced)."""

    def __init__(self, path: Path, rel: str, *, encoding: str | None = None, force_lines: bool = False):
        self.path = Path(path)
        self.rel = rel
        self.encoding = encoding
        self.force_lines = force_lines
        self.shape = "lines" if force_lines else "array"
        self.encoding_used = "utf-8"
        self.error = ""
        try:
            size = self.path.stat().st_size
        except OSError as exc:
            self.error = f"无法读取文件：{exc.strerror or exc}"
            return
        if size > settings.IMPORT_MAX_FILE_BYTES:
            self.error = f"文件过大（{size} 字节，上限 {settings.IMPORT_MAX_FILE_BYTES}，设置 IMPORT_MAX_FILE_BYTES）"

    def __iter__(self) -> Iterator[RawRecord]:
        if self.error:
            return
        try:
            handle = self.path.open("rb")
        except OSError as exc:
            self.error = f"无法读取文件：{exc.strerror or exc}"
            return
        with handle:
            handle = _as_utf8(handle)
            decoded = _Decoded(handle, self.encoding)
            parser = _Parser(_Window(decoded), self.rel, handle)
            try:
                yield from parser.parse(force_lines=self.force_lines)
            except OSError as exc:
                self.error = f"无法读取文件：{exc.strerror or exc}"
                return
            self.shape = parser.shape
            self.encoding_used = self.encoding if decoded.fallback_lines and self.encoding else "utf-8"


def iter_record_file(path: Path, rel: str, *, encoding: str | None = None, force_lines: bool = False) -> RecordStream:
    """The records of one file, streamed (see `RecordStream`); never raises for bad content.

    `encoding` is the fallback for bytes that are not UTF-8. `force_lines` reads the file as JSON
    Lines even when it holds a single record (a `.jsonl` file).
    """
    return RecordStream(path, rel, encoding=encoding, force_lines=force_lines)


def read_record_file(path: Path, rel: str, *, encoding: str | None = None, force_lines: bool = False) -> RecordFile:
    """All records of one file in a list, each with its location; never raises for bad content."""
    stream = iter_record_file(path, rel, encoding=encoding, force_lines=force_lines)
    records = list(stream)
    if stream.error:
        return RecordFile("object", [], error=stream.error)
    return RecordFile(stream.shape, records, encoding_used=stream.encoding_used)


def _as_utf8(handle: IO[bytes]) -> IO[bytes]:
    """The file's bytes without a UTF-8 byte-order mark; UTF-16 with a BOM (Windows Notepad's
    "Unicode") converted to UTF-8 in a temporary file (left as it is if it is not really UTF-16)."""
    head = handle.read(3)
    if head.startswith(b"\xef\xbb\xbf"):
        return handle
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-16")()
        converted = tempfile.TemporaryFile()
        try:
            for block in iter(lambda: handle.read(BLOCK_BYTES), b""):
                converted.write(decoder.decode(block).encode("utf-8", errors="surrogatepass"))
            converted.write(decoder.decode(b"", final=True).encode("utf-8", errors="surrogatepass"))
        except UnicodeDecodeError:
            converted.close()  # not really UTF-16: reported line by line
        else:
            converted.seek(0)
            return converted
    handle.seek(0)
    return handle


def _single_line(handle: IO[bytes]) -> bool:
    """Whether the file's content (leading and trailing blanks aside) has no line break. Reads the
    file's bytes once more, from the start; leaves the position where it was."""
    where = handle.tell()
    handle.seek(0)
    try:
        seen_content = pending_newline = False
        first = True
        for block in iter(lambda: handle.read(BLOCK_BYTES), b""):
            if first:
                block, first = block.removeprefix(b"\xef\xbb\xbf"), False
            if not seen_content:
                block = block.lstrip(_BYTE_SPACE)
                if not block:
                    continue
                seen_content = True
            if pending_newline and block.strip(_BYTE_SPACE):
                return False
            newline = block.find(b"\n")
            if newline >= 0:
                if block[newline + 1:].strip(_BYTE_SPACE):
                    return False
                pending_newline = True
        return True
    finally:
        handle.seek(where)


class _Parser:
    def __init__(self, window: _Window, rel: str, handle: IO[bytes]):
        self.w = window
        self.rel = rel
        self.handle = handle
        self.shape = "array"
        self._one_line: bool | None = None
        self.record_indent: int | None = None  # the column array records start at (for resuming)
        self.limit = settings.IMPORT_MAX_RECORD_CHARS
        self.lookahead = self.limit + 1

    @property
    def one_line(self) -> bool:
        if self._one_line is None:
            self._one_line = _single_line(self.handle)
        return self._one_line

    def _location(self, offset: int, position: int, in_array: bool) -> str:
        if in_array and self.one_line:
            return f"{self.rel}#{position}"
        return f"{self.rel}:{self.w.line_of(offset)}"

    def _resume(self, after: int, *, in_array: bool) -> int | None:
        """Where reading goes on after a broken record at `after`: in an array, the next line that
        starts a record at the records' indentation; otherwise the next non-blank line."""
        w = self.w
        search = after
        while True:
            w.fill(search + w.TRIM_CHARS)
            newline = w.s.find("\n", search - w.base)
            if newline < 0:
                if w.eof:
                    return None
                search = w.end
                w.trim(search)
                continue
            start = w.skip(newline + w.base + 1)
            if start >= w.end:
                return None
            if not in_array:
                return start
            line_start = w.s.rfind("\n", 0, start - w.base) + 1 + w.base
            if w.char(start) in "{[" and (self.record_indent is None or start - line_start == self.record_indent):
                return start
            search = start

    def _record(self, start: int, position: int, in_array: bool) -> tuple[RawRecord, int | None]:
        """The value starting at `start` and the offset after it (None: resume by line)."""
        w = self.w
        w.fill(start + self.lookahead)
        location = self._location(start, position, in_array)
        try:
            value, end = _DECODER.raw_decode(w.s, start - w.base)
        except json.JSONDecodeError as exc:
            maybe_cut = not w.eof and (exc.pos >= len(w.s) - 1 or exc.msg.startswith("Unterminated string"))
            if not maybe_cut:
                return RawRecord(location, position,
                                 error=f"不是有效的 JSON（{exc.msg}，第 {w.line_of(exc.pos + w.base)} 行）"), None
            w.fill(start + 4 * self.lookahead)  # a record over the limit, or a broken one: read enough to tell
            try:
                value, end = _DECODER.raw_decode(w.s, start - w.base)
            except json.JSONDecodeError as again:
                if not w.eof and (again.pos >= len(w.s) - 1 or again.msg.startswith("Unterminated string")):
                    return RawRecord(location, position, error=(
                        f"记录过大（超过 {w.end - start} 字符，上限 {self.limit}，设置 IMPORT_MAX_RECORD_CHARS）")), None
                return RawRecord(location, position,
                                 error=f"不是有效的 JSON（{again.msg}，第 {w.line_of(again.pos + w.base)} 行）"), None
        end += w.base
        record = RawRecord(location, position, value=value)
        if w.decoded.bad_lines:
            bad = _UNDECODED.search(w.s, start - w.base, end - w.base)
            if bad is not None:
                number = w.line_of(bad.start() + w.base)
                record.error, record.value = f"第 {number} 行{w.decoded.bad_lines.get(number, '无法解码的字节')}", None
                if not in_array or not self.one_line:
                    record.location = f"{self.rel}:{number}"
                return record, end
        too_large = oversize_message(end - start)
        if too_large:
            record.error, record.value = too_large, None
            return record, end
        if w.s.find("\x00", start - w.base, end - w.base) >= 0 or w.s.find("\\u0000", start - w.base, end - w.base) >= 0:
            record.value, removed = _strip_nul(value)
            if removed:
                record.notes.append(f"去掉了 {removed} 个 NUL 字符（PostgreSQL 不能保存）")
        return record, end

    def parse(self, *, force_lines: bool) -> Iterator[RawRecord]:
        start = self.w.skip(0)
        if start >= self.w.end:
            self.shape = "lines" if force_lines else "array"
            return
        if self.w.char(start) == "[" and not force_lines:
            self.shape = "array"
            yield from self._array(start + 1)
            return
        yield from self._sequence(start, force_lines)

    def _array(self, index: int) -> Iterator[RawRecord]:
        w = self.w
        position = 0
        while True:
            w.trim(index)
            index = w.skip(index)
            if index >= w.end:
                yield RawRecord(f"{self.rel}:{w.line_of(index)}", position, error="JSON 数组没有结束（缺少 ]），文件可能不完整")
                return
            if w.char(index) == "]":
                return
            if self.record_indent is None and not self.one_line:
                self.record_indent = index - (w.s.rfind("\n", 0, index - w.base) + 1 + w.base)
            record, end = self._record(index, position, in_array=True)
            position += 1
            yield record
            if end is None:
                index = self._resume(index, in_array=True)
                if index is None:
                    return
                continue
            index = w.skip(end)
            if w.char(index) == ",":
                index += 1

    def _sequence(self, index: int, force_lines: bool) -> Iterator[RawRecord]:
        w = self.w
        position = commas = 0
        while index < w.end:
            w.trim(index)
            record, end = self._record(index, position, in_array=False)
            position += 1
            yield record
            if end is None:
                index = self._resume(index, in_array=False)
                if index is None:
                    break
                continue
            index = w.skip(end)
            if w.char(index) == ",":
                commas += 1
                index = w.skip(index + 1)
        if commas:
            self.shape = "comma_lines"
        elif position == 1 and not force_lines:
            self.shape = "object"
        else:
            self.shape = "lines"


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
