"""Training data from LLM call logs (the team's `from_logs/extract`, seed 001).

The team's logger writes one JSON object per line into `.jsonl` files, one record per model call:
`success`, `prompt` (or, from batch calls, `current_batch_content`), `response` holding an
`answer` — `response` is a dict or a JSON string of one — and usually `model`. A record becomes a
training record only when the call succeeded and has a prompt and an answer; every other line is
counted under one stable drop reason:

    malformed_json   the line is not JSON (reported with file and line)
    encoding         the line is not UTF-8 (reported with file and line; the file goes on)
    not_object       the line is JSON but not an object
    not_successful   `success` is not true
    no_response      no `response`
    no_answer        `response` has no non-empty `answer`
    no_prompt        neither `prompt` nor `current_batch_content`

Reading is streaming: one line at a time (bytes, decoded per line), so a 1 GB folder needs no more
memory than its longest line. `LogReader` is an iterable of builder records with a `report`;
the job kind "log_extraction" imports a folder into `LogRecord` rows, one job item per file.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from core.errors import ApplicationError
from core.jsonfiles import oversize_message

from pipelines.jobs.kinds import ItemFailed, JobKindHandler, register
from pipelines.models import Job, JobKind, LogRecord

DROP_REASON_LABELS = {
    "malformed_json": "JSON 格式错误", "encoding": "编码错误（非 UTF-8）", "not_object": "不是 JSON 对象",
    "too_large": "行过长（IMPORT_MAX_RECORD_CHARS）",
    "not_successful": "调用失败", "no_response": "缺少 response", "no_answer": "缺少 answer",
    "no_prompt": "缺少 prompt",
}
# Problems listed with file and line in a report (the counts are always complete).
MAX_LISTED_PROBLEMS = 100
BULK_SIZE = 1000
READ_BUFFER = 1 << 20


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


def content_hash(prompt: str, response: str) -> str:
    return hashlib.sha256(f"{prompt}\x00{response}".encode("utf-8")).hexdigest()


def log_files(log_dir: str | Path) -> list[Path]:
    """The folder's `.jsonl` files, recursively, in a stable order."""
    root = Path(log_dir)
    if not root.is_dir():
        raise ApplicationError(f"日志目录不存在：{log_dir}", code="not_found")
    return sorted(p for p in root.rglob("*.jsonl") if p.is_file())


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


_parse_start = json.JSONDecoder().raw_decode
_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")  # what json.loads allows around a value


def _parse_line(text: str) -> Any:
    """json.loads(text): the same value, or the same error with its own message. A line that is one
    value (as good as every line) skips loads' two extra calls, a fifth of its time per line."""
    try:
        value, end = _parse_start(text)
    except ValueError:  # leading whitespace, or a malformed line: loads accepts it or words the error
        return json.loads(text)
    if end == len(text) or _JSON_WHITESPACE.fullmatch(text, end):
        return value
    return json.loads(text)  # "Extra data"


def iter_log_file(path: Path, report: FileReport, *, name: str | None = None) -> Iterator[tuple[int, dict]]:
    """(line number, extracted call) for each usable line of one file; everything else counted."""
    name = name or str(path)
    silent = {"not_successful", "no_response", "no_answer", "no_prompt"}
    # Read once per file: a settings read costs ~0.3 µs, per line a tenth of the reader's own work.
    # oversize_message words the refusal (and is None exactly up to this bound).
    limit = settings.IMPORT_MAX_RECORD_CHARS
    # A 1 MB buffer: the default 8 KB one made a read call every few lines (~7 % of reading).
    with open(path, "rb", buffering=READ_BUFFER) as fh:
        for line_no, raw in enumerate(fh, start=1):
            if raw.isspace():  # (what `not raw.strip()` says, without copying the line)
                continue
            report.lines += 1
            try:
                text = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                report.problem("encoding", name, line_no, str(exc))
                continue
            if len(text) > limit:
                report.problem("too_large", name, line_no, oversize_message(len(text)))
                continue
            try:
                call = _parse_line(text)
            except ValueError as exc:
                report.problem("malformed_json", name, line_no, str(exc))
                continue
            try:
                extracted = extract_call(call)
            except LogLineRejected as exc:
                if exc.reason in silent:
                    # Expected drops are counted, not listed line by line.
                    report.dropped[exc.reason] += 1
                else:
                    report.problem(exc.reason, name, line_no, exc.detail)
                continue
            report.kept += 1
            yield line_no, extracted


class LogReader:
    """Builder records from every `.jsonl` file under `log_dir`, streamed; `.report` after iterating.

    Record ids are `<file relative to log_dir>:<line>`; the file and line are kept in `meta`.
    """

    # Its records are plain JSON values without system, history or images: the builder can then
    # make each training row once, when it spools the record (see builder._SpooledRows).
    optional_columns: tuple[str, ...] = ()

    def __init__(self, log_dir: str | Path, *, source: str = "logs"):
        self.log_dir = Path(log_dir)
        self.source = source
        self.files = log_files(self.log_dir)
        self._report = FileReport()

    @property
    def report(self) -> dict:
        return {"files": len(self.files), **self._report.as_dict()}

    def __iter__(self) -> Iterator[dict]:
        for path in self.files:
            rel = path.relative_to(self.log_dir).as_posix()
            for line_no, call in iter_log_file(path, self._report, name=rel):
                yield {
                    "id": f"{rel}:{line_no}",
                    "source": self.source,
                    "prompt": call["prompt"],
                    "response": call["response"],
                    "meta": {"file": rel, "line": line_no, "model_name": call["model_name"]},
                }


# --------------------------------------------------------------------------- import (job kind)

@transaction.atomic
def _store_batch(job: Job, rows: list[LogRecord]) -> None:
    # Idempotent: a re-delivered item rewrites the same (source_file, line_no) rows.
    LogRecord.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["source_file", "line_no"],
        update_fields=["job", "prompt", "response", "model_name", "content_hash"],
    )


def import_log_file(*, job: Job, path: Path) -> dict:
    """Import one log file's usable lines as LogRecord rows (upsert); returns the file's counts."""
    report = FileReport()
    batch: list[LogRecord] = []
    source_file = str(path)
    for line_no, call in iter_log_file(path, report, name=source_file):
        batch.append(LogRecord(job=job, source_file=source_file, line_no=line_no, prompt=call["prompt"],
                               response=call["response"], model_name=call["model_name"][:200],
                               content_hash=content_hash(call["prompt"], call["response"])))
        if len(batch) >= BULK_SIZE:
            _store_batch(job, batch)
            batch = []
    if batch:
        _store_batch(job, batch)
    return report.as_dict()


@register
class LogExtractionHandler(JobKindHandler):
    """Import a log folder: one item per `.jsonl` file, each file's usable lines → LogRecord rows."""

    kind = JobKind.LOG_EXTRACTION
    queue = "extraction"
    uses_llm = False

    def clean_params(self, params: dict[str, Any]) -> dict[str, Any]:
        log_dir = params.get("log_dir")
        if not log_dir:
            raise ApplicationError("请指定日志目录（log_dir）")
        root = Path(log_dir).resolve()
        if not log_files(root):
            raise ApplicationError(f"日志目录中没有 .jsonl 文件：{log_dir}", code="empty")
        return {**params, "log_dir": str(root)}

    def item_keys(self, job: Job) -> list[str]:
        root = Path(job.params["log_dir"])
        return [p.relative_to(root).as_posix() for p in log_files(root)]

    def prepare(self, job: Job, key: str) -> str:
        root = Path(job.params["log_dir"]).resolve()
        path = (root / key).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise ItemFailed("missing_file", f"文件不存在：{key}")
        return str(path)

    def store(self, job: Job, key: str, payload: str, output: Any) -> dict:
        try:
            return import_log_file(job=job, path=Path(payload))
        except OSError as exc:
            raise ItemFailed("unreadable", str(exc)) from exc

    def finalize(self, job: Job) -> dict[str, Any]:
        return summarize_item_reports([item.result or {} for item in job.items.all()])


def summarize_item_reports(results: list[dict]) -> dict:
    """Add up the per-file reports of an import job."""
    total = {"files": len(results), "lines": 0, "kept": 0, "dropped": Counter(), "problems": []}
    for result in results:
        total["lines"] += result.get("lines", 0)
        total["kept"] += result.get("kept", 0)
        total["dropped"].update(result.get("dropped", {}))
        room = MAX_LISTED_PROBLEMS - len(total["problems"])
        total["problems"] += result.get("problems", [])[:max(room, 0)]
    total["dropped"] = dict(total["dropped"])
    return total
