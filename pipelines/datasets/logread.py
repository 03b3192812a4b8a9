"""Reading LLM call logs, line by line, into calls (prompt, answer, model) and a report of every line
dropped (the reasons are listed in `pipelines.datasets.logs`).

No models here: `read_log_span` also runs in processes of their own (`core.processes`), which a
large folder is read by, a file a span at a time (`logs.LogReader`).
"""
from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings

from core.jsonfiles import oversize_message

# Problems listed with file and line in a report (the counts are always complete).
MAX_LISTED_PROBLEMS = 100
# Expected drops: counted, not listed line by line.
SILENT_REASONS = frozenset({"not_successful", "no_response", "no_answer", "no_prompt"})


class LogLineRejected(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def _text(value: Any) -> str:
    """A prompt or answer as text: strings stripped, structured values as JSON (CJK unescaped)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False)


def _is_true(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return value is True or value == 1


def _answer_of(response: Any) -> str:
    if isinstance(response, str):
        stripped = response.strip()
        if not stripped:
            raise LogLineRejected("no_response")
        try:
            response = json.loads(stripped)
        except ValueError:
            raise LogLineRejected("no_answer", "response 不是 JSON") from None
    if not isinstance(response, dict):
        raise LogLineRejected("no_answer", "response 不是对象")
    answer = _text(response.get("answer"))
    if not answer:
        raise LogLineRejected("no_answer")
    return answer


def extract_call(call: Any) -> dict:
    """The prompt/answer of one parsed log line; LogLineRejected(reason) when it has none."""
    if not isinstance(call, dict):
        raise LogLineRejected("not_object")
    if not _is_true(call.get("success")):
        raise LogLineRejected("not_successful")
    response = call.get("response")
    if response is None or response == "":
        raise LogLineRejected("no_response")
    answer = _answer_of(response)
    # The original prompt first; batch calls only log the batch they sent.
    prompt = _text(call.get("prompt")) or _text(call.get("current_batch_content"))
    if not prompt:
        raise LogLineRejected("no_prompt")
    model_name = call.get("model") or call.get("model_name") or ""
    return {"prompt": prompt, "response": answer, "model_name": model_name if isinstance(model_name, str) else ""}


class FileReport:
    """Counts and listed problems of reading one or more log files."""

    def __init__(self):
        self.lines = 0
        self.kept = 0
        self.dropped: Counter[str] = Counter()
        self.problems: list[dict] = []
        self.files: dict[str, dict] = {}

    def problem(self, reason: str, file: str, line: int, detail: str) -> None:
        self.dropped[reason] += 1
        self.files.setdefault(file, Counter())[reason] += 1
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append({"reason": reason, "file": file, "line": line, "detail": detail[:200]})

    def as_dict(self) -> dict:
        return {"lines": self.lines, "kept": self.kept, "dropped": dict(self.dropped),
                "problems": self.problems, "files_with_problems": {k: dict(v) for k, v in self.files.items()}}

    def add(self, other: dict, *, line_offset: int = 0) -> None:
        """Add the report `other` (`as_dict`) of the lines that follow, its line numbers shifted by
        `line_offset`: what one report of all those lines would say."""
        self.lines += other["lines"]
        self.kept += other["kept"]
        self.dropped.update(other["dropped"])
        for file, counts in other["files_with_problems"].items():
            self.files.setdefault(file, Counter()).update(counts)
        room = max(MAX_LISTED_PROBLEMS - len(self.problems), 0)
        self.problems += [{**p, "line": p["line"] + line_offset} for p in other["problems"][:room]]


def iter_log_file(path: Path, report: FileReport, *, name: str | None = None) -> Iterator[tuple[int, dict]]:
    """(line number, extracted call) for each usable line of one file; everything else counted."""
    with open(path, "rb") as fh:
        yield from iter_log_lines(fh, report, name=name or str(path))


def iter_log_lines(lines: Iterable[bytes], report: FileReport, *, name: str,
                   at_file_start: bool = True) -> Iterator[tuple[int, dict]]:
    """`iter_log_file` over `lines` (a file, or a span of one: `at_file_start` False after its
    first byte), numbered from 1."""
    # Read once: a settings read costs ~0.3 µs, per line a tenth of the reader's own work.
    # oversize_message words the refusal (and is None exactly up to this bound).
    limit = settings.IMPORT_MAX_RECORD_CHARS
    for line_no, raw in enumerate(lines, start=1):
        if raw.isspace():  # (what `not raw.strip()` says, without copying the line)
            continue
        report.lines += 1
        try:
            text = raw.decode("utf-8-sig" if line_no == 1 and at_file_start else "utf-8")
        except UnicodeDecodeError as exc:
            report.problem("encoding", name, line_no, str(exc))
            continue
        if len(text) > limit:
            report.problem("too_large", name, line_no, oversize_message(len(text)))
            continue
        try:
            call = json.loads(text)
        except ValueError as exc:
            report.problem("malformed_json", name, line_no, str(exc))
            continue
        try:
            extracted = extract_call(call)
        except LogLineRejected as exc:
            if exc.reason in SILENT_REASONS:
                # Expected drops are counted, not listed line by line.
                report.dropped[exc.reason] += 1
            else:
                report.problem(exc.reason, name, line_no, exc.detail)
            continue
        report.kept += 1
        yield line_no, extracted


def log_spans(path: Path, span_bytes: int) -> Iterator[tuple[int, int]]:
    """(start, end) byte ranges of a file, about `span_bytes` each, that begin and end at line
    boundaries: read one by one, they are the file's lines in order."""
    size = path.stat().st_size
    start = 0
    with open(path, "rb") as fh:
        while start < size:
            if start + span_bytes >= size:
                end = size
            else:
                fh.seek(start + span_bytes)
                fh.readline()  # to the end of the line the span's end falls in
                end = fh.tell()
            yield start, end
            start = end


def read_log_span(path: str, start: int, end: int, name: str) -> tuple[int, list[tuple[int, str, str, str]], dict]:
    """One span of a log file (`log_spans`), in a process of its own: (how many lines it has, its
    calls as (line in the span, prompt, response, model name), its report — lines numbered from
    the span's first). The caller adds the lines before the span."""
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    report = FileReport()
    calls = [(line_no, call["prompt"], call["response"], call["model_name"])
             for line_no, call in iter_log_lines(io.BytesIO(data), report, name=name, at_file_start=start == 0)]
    lines = data.count(b"\n") + (not data.endswith(b"\n") if data else 0)
    return lines, calls, report.as_dict()
