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
memory than its longest line. A folder of PROCESSES_FROM_BYTES or more is parsed by processes of
their own (LOG_READ_PROCESSES), a span of about SPAN_BYTES at a time, SPANS_AHEAD spans per process
ahead of the build: memory stays bounded by those spans (and the longest line). `LogReader` is an iterable of builder records with a `report`;
the job kind "log_extraction" imports a folder into `LogRecord` rows, one job item per file.
"""
from __future__ import annotations

import hashlib
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from core.errors import ApplicationError
from core.processes import may_start_processes, worker_processes

from pipelines.jobs.kinds import ItemFailed, JobKindHandler, register
from pipelines.models import Job, JobKind, LogRecord

# Reading lines into calls lives in logread (no models: its spans are read in processes too).
from .logread import (  # noqa: F401 - LogLineRejected and extract_call are this module's API too
    MAX_LISTED_PROBLEMS,
    FileReport,
    LogLineRejected,
    extract_call,
    iter_log_file,
    log_spans,
    read_log_span,
)

DROP_REASON_LABELS = {
    "malformed_json": "JSON 格式错误", "encoding": "编码错误（非 UTF-8）", "not_object": "不是 JSON 对象",
    "too_large": "行过长（IMPORT_MAX_RECORD_CHARS）",
    "not_successful": "调用失败", "no_response": "缺少 response", "no_answer": "缺少 answer",
    "no_prompt": "缺少 prompt",
}
BULK_SIZE = 1000
PROCESSES_FROM_BYTES = 64 * 1024 * 1024  # smaller folders are read in the building process
SPAN_BYTES = 4 * 1024 * 1024  # what a reading process is given at a time
SPANS_AHEAD = 4  # spans per process read ahead of the build


def content_hash(prompt: str, response: str) -> str:
    return hashlib.sha256(f"{prompt}\x00{response}".encode("utf-8")).hexdigest()


def log_files(log_dir: str | Path) -> list[Path]:
    """The folder's `.jsonl` files, recursively, in a stable order."""
    root = Path(log_dir)
    if not root.is_dir():
        raise ApplicationError(f"日志目录不存在：{log_dir}", code="not_found")
    return sorted(p for p in root.rglob("*.jsonl") if p.is_file())


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
        if self._read_by_processes():
            yield from self._read_in_processes()
            return
        for path in self.files:
            rel = path.relative_to(self.log_dir).as_posix()
            for line_no, call in iter_log_file(path, self._report, name=rel):
                yield self._record(rel, line_no, call["prompt"], call["response"], call["model_name"])

    def _record(self, rel: str, line_no: int, prompt: str, response: str, model_name: str) -> dict:
        return {"id": f"{rel}:{line_no}", "source": self.source, "prompt": prompt, "response": response,
                "meta": {"file": rel, "line": line_no, "model_name": model_name}}

    def _read_by_processes(self) -> bool:
        """A folder of PROCESSES_FROM_BYTES or more is parsed by LOG_READ_PROCESSES processes, on other
        cores than the build it feeds (reading was a third of an extraction's time)."""
        return (settings.LOG_READ_PROCESSES > 0 and may_start_processes()
                and sum(path.stat().st_size for path in self.files) >= PROCESSES_FROM_BYTES)

    def _read_in_processes(self) -> Iterator[dict]:
        """The records `__iter__` yields, each file read a span at a time by the processes: the same
        records, ids and report, in the same order. A few spans per process are read ahead (memory
        stays bounded whatever the folder's size)."""
        spans = ((path, path.relative_to(self.log_dir).as_posix(), start, end)
                 for path in self.files for start, end in log_spans(path, SPAN_BYTES))
        processes = worker_processes(settings.LOG_READ_PROCESSES, setting_names=("IMPORT_MAX_RECORD_CHARS",))
        reading: deque = deque()

        def read_next() -> None:
            span = next(spans, None)
            if span is not None:
                path, rel, start, end = span
                reading.append((rel, start, processes.submit(read_log_span, str(path), start, end, rel)))

        try:
            for _ in range(settings.LOG_READ_PROCESSES * SPANS_AHEAD):
                read_next()
            lines_before = 0  # in the file being read, before this span
            while reading:
                rel, start, future = reading.popleft()
                read_next()
                lines, calls, report = future.result()
                if start == 0:
                    lines_before = 0
                self._report.add(report, line_offset=lines_before)
                for line_no, prompt, response, model_name in calls:
                    yield self._record(rel, lines_before + line_no, prompt, response, model_name)
                lines_before += lines
        finally:
            processes.shutdown(cancel_futures=True)


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
