"""Training files: rows streamed into a .json array or a .jsonl file (temporary file, then rename),
and read back."""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from core import files

from .readers import from_row
from .spec import FormatError, columns_of
from .writers import to_row


# One encoder for every row: json.dumps(row, ensure_ascii=False) builds a new JSONEncoder per call.
_encode_json = json.JSONEncoder(ensure_ascii=False).encode


def encode_row(value: Any) -> str:
    """`value` as json.dumps(value, ensure_ascii=False) writes it. A row whose keys are strings and
    whose values are strings or lists of strings (most rows: alpaca, prompt/completion, with or
    without images) is joined from its escaped strings, with the escaping function the encoder
    itself uses: the encoder's own set-up per call was a fifth of encoding such a row. Anything
    else goes through the encoder."""
    if type(value) is dict:
        escaped = encode_basestring
        try:
            fields = [escaped(k) + ": " + (escaped(v) if type(v) is str else _string_list(v))
                      for k, v in value.items()]
            return "{" + ", ".join(fields) + "}"
        except TypeError:
            # A key, value or list item that is not a string. A row's history (rare) is thus
            # encoded twice as slowly as by the encoder alone.
            pass
    elif type(value) is str:  # an id
        return encode_basestring(value)
    return _encode_json(value)


def _string_list(value: Any) -> str:
    """A list of strings (a row's images) as the encoder writes it; TypeError for anything else."""
    if type(value) is not list:
        raise TypeError
    return "[" + ", ".join(map(encode_basestring, value)) + "]"


FLUSH_ROWS = 512  # rows joined into one write: a write call per row costs more than the encoding
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def escape_lone_surrogates(text: str) -> str:
    """`text` with each lone surrogate (a logger's "\\ud800", the bytes of a file name that is not
    UTF-8) written as the six characters of its JSON escape, which UTF-8 can hold. In JSON text that
    is the escape itself (json.loads reads back the same string: the provenance file); in plain
    text, a visible spelling (ids and names in a report, stored and shown). A row's text is
    refused instead (`encoded_row`)."""
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def encoded_row(row: dict) -> bytes:
    """The row's UTF-8 JSON (the bytes RowWriter writes for it); FormatError if UTF-8 cannot hold
    its text."""
    text = encode_row(row)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # A lone UTF-16 surrogate (JSON's "\ud800" escape decodes to one): no UTF-8 file can hold
        # it. Named escaped, so the report that lists it can itself be written.
        raise FormatError(f"文本含有孤立的代理项 {ascii(text[exc.start])}，无法写成 UTF-8") from None


def container_for(path: str | Path) -> str:
    """"jsonl" for a .jsonl file, "json" (one array) otherwise."""
    return "jsonl" if str(path).endswith(".jsonl") else "json"


class RowWriter:
    """Streams rows into a .json array or a .jsonl file (UTF-8, CJK not escaped).

        with RowWriter(path) as out:
            out.write({"instruction": "…", …})
            out.write_encoded(encode_row(row).encode())   # a row the caller already encoded

    The rows go to a temporary file beside `path` (`core.files`), renamed to `path` when the
    block ends normally and removed when it raises: a killed or failed write never leaves a half
    file under the final name. `overwrite=False` refuses to replace an existing `path`.
    """

    def __init__(self, path: str | Path, container: str | None = None, *, overwrite: bool = True):
        self.path = Path(path)
        self.container = container or container_for(self.path)
        self.overwrite = overwrite
        self.count = 0
        self._fh = None
        self._context = None
        # Rows as text (write) or UTF-8 (write_encoded), written in order by _flush.
        self._pending: list[str | bytes] = []
        self._encoded = False  # some of _pending are bytes

    def __enter__(self) -> RowWriter:
        # Binary, encoding here: pre-encoded rows are written as they are.
        self._context = files.atomic_open(self.path, "wb", overwrite=self.overwrite)
        self._fh = self._context.__enter__()
        if self.container == "json":
            self._fh.write(b"[")
        return self

    def write(self, row: dict) -> None:
        if self.container == "json":
            self._pending.append(("\n  " if self.count == 0 else ",\n  ") + encode_row(row))
        else:
            self._pending.append(encode_row(row) + "\n")
        self.count += 1
        if len(self._pending) >= FLUSH_ROWS:
            self._flush()

    def write_encoded(self, row: bytes) -> None:
        """Write a row given as its UTF-8 JSON (the bytes `encode_row(row).encode()` gives)."""
        if self.container == "json":
            self._pending.append((b"\n  " if self.count == 0 else b",\n  ") + row)
        else:
            self._pending.append(row + b"\n")
        self._encoded = True
        self.count += 1
        if len(self._pending) >= FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        pending = self._pending
        if not self._encoded:
            data = "".join(pending).encode("utf-8")
        else:
            try:
                data = b"".join(p if type(p) is bytes else p.encode("utf-8") for p in pending)
            except UnicodeEncodeError:
                # The error writing the batch as one text raises (its position within the batch).
                "".join(p if type(p) is str else p.decode("utf-8") for p in pending).encode("utf-8")
                raise
        self._fh.write(data)
        pending.clear()
        self._encoded = False

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self._flush()
            if self.container == "json":
                self._fh.write(b"\n]\n" if self.count else b"]\n")
        return bool(self._context.__exit__(exc_type, exc, tb))


def write_rows(path: str | Path, rows: Iterable[dict], container: str | None = None, *,
               overwrite: bool = True) -> int:
    """Write already-formatted rows (temporary file, then rename); returns how many."""
    with RowWriter(path, container, overwrite=overwrite) as out:
        for row in rows:
            out.write(row)
    return out.count


def write_records(path: str | Path, fmt: str, records: Iterable[dict], *,
                  columns: Iterable[str] | None = None, container: str | None = None) -> int:
    """Write records in format `fmt` to `path`; returns the row count.

    `columns`: optional columns written on every row. Left as None with a list of records, it is
    computed from the records (a generator is then materialised once — pass `columns` to stream).
    """
    if columns is None:
        records = list(records)
        columns = columns_of(records)
    columns = set(columns)
    return write_rows(path, (to_row(fmt, r, columns) for r in records), container)


def iter_rows(path: str | Path) -> Iterator[dict]:
    """Rows of a .json array or .jsonl file (format detected from the first character)."""
    with open(path, encoding="utf-8") as fh:
        head = fh.read(1)
        while head and head.isspace():
            head = fh.read(1)
        if head == "[":
            fh.seek(0)
            yield from json.load(fh)
            return
        fh.seek(0)
        for line in fh:
            if line.strip():
                yield json.loads(line)


def read_records(path: str | Path, fmt: str) -> list[dict]:
    """Read a training file of format `fmt` back into records (spec readers)."""
    return [from_row(fmt, row) for row in iter_rows(path)]
