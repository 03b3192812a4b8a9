"""Reading generation source items (image, wiki title, optional facts) from JSON or JSONL, with a
readable problem per bad line; and finding a source item's image inside MEDIA_ROOT."""
from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from core.errors import ApplicationError
from core.jsonfiles import oversize_message, record_size

SOURCE_ID_KEYS = ("id", "external_id", "item_id", "uid")
SOURCE_IMAGE_KEYS = ("image", "image_path", "img", "image_url")
SOURCE_TITLE_KEYS = ("wiki_title", "title", "name")


@dataclass
class ImportProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"第 {self.line} 行: {self.message}"


@dataclass
class ImportReport:
    collection: str
    created: int = 0
    updated: int = 0
    problems: list[ImportProblem] = field(default_factory=list)
    external_ids: list[str] = field(default_factory=list)


def _first(record: dict, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in record and record[key] not in (None, ""):
            return record[key]
    return None


def parse_source_record(record: Any, *, line: int) -> dict:
    """A source record as SourceItem fields; raises ValueError with a readable message if bad."""
    if not isinstance(record, dict):
        raise ValueError(f"不是 JSON 对象（而是 {type(record).__name__}）")
    too_large = oversize_message(record_size(record))
    if too_large:
        raise ValueError(too_large)
    image = _first(record, SOURCE_IMAGE_KEYS)
    title = _first(record, SOURCE_TITLE_KEYS)
    if image is None and title is None:
        raise ValueError("缺少 image 和 wiki_title")
    if image is not None and not isinstance(image, str):
        raise ValueError("image 必须是字符串")
    if title is not None and not isinstance(title, str):
        raise ValueError("wiki_title 必须是字符串")
    facts = record.get("facts", [])
    if facts is None:
        facts = []
    if isinstance(facts, str):
        facts = [facts]
    if not isinstance(facts, list) or not all(isinstance(f, (str, int, float)) for f in facts):
        raise ValueError("facts 必须是字符串列表")
    attributes = record.get("attributes", {})
    if not isinstance(attributes, dict):
        raise ValueError("attributes 必须是对象")
    attributes = dict(attributes)
    used = {*SOURCE_ID_KEYS, *SOURCE_IMAGE_KEYS, *SOURCE_TITLE_KEYS, "facts", "attributes"}
    # Other scalar fields (category, era, …) are attributes too: analysis groups by them.
    for key, value in record.items():
        if key not in used and isinstance(value, (str, int, float, bool)) and key not in attributes:
            attributes[key] = value
    external_id = _first(record, SOURCE_ID_KEYS)
    if external_id is None:
        basis = json.dumps([image or "", title or ""], ensure_ascii=False)
        external_id = "src-" + hashlib.sha256(basis.encode()).hexdigest()[:12]
    return {
        "external_id": str(external_id)[:255],
        "image": (image or "")[:500],
        "wiki_title": (title or "")[:500],
        "facts": [str(f) for f in facts],
        "attributes": attributes,
    }


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def read_source_records(text: str) -> tuple[list[tuple[int, Any]], list[ImportProblem]]:
    """(line, record) pairs from a JSON array or JSONL text, with the lines that could not be read.

    A JSON array is read element by element, so one broken record is reported with its line and
    reading resumes at the next record that starts on a new line.
    """
    records: list[tuple[int, Any]] = []
    problems: list[ImportProblem] = []
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("["):
        decoder = json.JSONDecoder()
        pos = text.index("[") + 1
        while True:
            while pos < len(text) and text[pos] in " \t\r\n,":
                pos += 1
            if pos >= len(text) or text[pos] == "]":
                break
            try:
                value, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                problems.append(ImportProblem(_line_of(text, exc.pos), f"JSON 格式错误: {exc.msg}"))
                # Resume at the next record that begins a line.
                match = re.compile(r"\n[ \t]*\{").search(text, max(exc.pos, pos + 1))
                if not match:
                    break
                pos = match.end() - 1
                continue
            records.append((_line_of(text, pos), value))
            pos = end
        return records, problems
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(ImportProblem(number, f"JSON 格式错误: {exc.msg}"))
    return records, problems


def sample_records(records: list, n: int | None, *, seed: int = 42) -> list:
    """A reproducible sample of n records (all when n is None or ≥ len), in the original order."""
    if n is None or n >= len(records):
        return list(records)
    if n < 0:
        raise ApplicationError("样本数不能为负")
    chosen = sorted(random.Random(seed).sample(range(len(records)), n))
    return [records[i] for i in chosen]


def resolve_image(path: str) -> Path | None:
    """The image file of a source item inside MEDIA_ROOT, or None (missing, or outside MEDIA_ROOT)."""
    if not path or "://" in path:
        return None
    root = Path(settings.MEDIA_ROOT).resolve()
    candidate = Path(path)
    full = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not full.is_relative_to(root) or not full.is_file():
        return None
    return full
