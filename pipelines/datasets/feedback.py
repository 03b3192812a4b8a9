"""Training data from user feedback ratings (the team's generate_training_data_from_feedback, seed 003).

A feedback file is JSON (an array, or an object holding one under "feedback"/"data"/"items"/
"samples") or JSON Lines of rated conversations:

    {"instruction": "用户的问题", "input": "", "output": "模型的回答", "rating": 5,
     "model_name": "huanhuan-qwen", "feedback_id": "…", "timestamp": "2025-01-01T10:00:00"}

Common aliases are read too (question/prompt, answer/response, score, model, id, created_at).
Entries below `min_rating` (default 4) or of another model than `model_name` are filtered out; bad
entries are counted by reason and listed with their line (JSONL) or position (JSON array):

    malformed_json, encoding, not_object, no_instruction, no_output, bad_rating, duplicate_id
    (filtered, not errors: below_min_rating, other_model)

The job kind "feedback_import" imports a file into `FeedbackSample` rows (one item per file;
re-importing keeps existing rows and their reviews). Reviewers then accept, edit the output or
reject each sample (`services.feedback_sample_decide`, with a version check). `write_feedback_outputs`
writes the seed's json / jsonl / alpaca files; `selectors.feedback_records` feeds reviewed rows to the
builder.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.errors import ApplicationError
from core.jsonfiles import oversize_message, record_size

from pipelines.jobs.kinds import ItemFailed, JobKindHandler, register
from pipelines.models import FeedbackSample, Job, JobKind

from .builder import build_dataset
from .options import BuildOptions, Source

DEFAULT_MIN_RATING = 4
OUTPUT_FORMATS = ("json", "jsonl", "alpaca")
# The seed's three outputs, by format.
OUTPUT_FILE_NAMES = {"json": "training_samples.json", "jsonl": "training_samples.jsonl",
                     "alpaca": "alpaca_training_samples.json"}
MAX_LISTED_PROBLEMS = 100
ALIASES = {
    "instruction": ("instruction", "question", "prompt", "query", "user_message"),
    "input": ("input", "context"),
    "output": ("output", "answer", "response", "model_response"),
    "rating": ("rating", "score"),
    "model_name": ("model_name", "model"),
    "feedback_id": ("feedback_id", "id"),
    "timestamp": ("timestamp", "created_at", "time", "rated_at"),
}
LIST_KEYS = ("feedback", "data", "items", "samples", "records")


class FeedbackRejected(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def _pick(entry: dict, field: str) -> Any:
    for key in ALIASES[field]:
        if entry.get(key) not in (None, ""):
            return entry[key]
    return None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def parse_rated_at(value: Any) -> datetime | None:
    """A timestamp as an aware datetime: ISO strings, "YYYY-MM-DD HH:MM:SS", or epoch seconds/ms."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, tz=timezone.get_current_timezone())
    try:
        parsed = parse_datetime(str(value).strip())
    except ValueError:
        return None
    if parsed is None:
        return None
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


def parse_entry(entry: Any) -> dict:
    """One feedback entry in the seed's shape; FeedbackRejected(reason) when it is unusable."""
    if not isinstance(entry, dict):
        raise FeedbackRejected("not_object")
    too_large = oversize_message(record_size(entry))
    if too_large:
        raise FeedbackRejected("too_large", too_large)
    instruction = _as_text(_pick(entry, "instruction"))
    if not instruction:
        raise FeedbackRejected("no_instruction")
    output = _as_text(_pick(entry, "output"))
    if not output:
        raise FeedbackRejected("no_output")
    raw_rating = _pick(entry, "rating")
    try:
        rating = int(raw_rating)
        if rating != float(raw_rating) or not 1 <= rating <= 5:
            raise ValueError
    except (TypeError, ValueError):
        raise FeedbackRejected("bad_rating", f"rating={raw_rating!r}") from None
    model_name = _as_text(_pick(entry, "model_name"))
    timestamp = _pick(entry, "timestamp")
    feedback_id = _as_text(_pick(entry, "feedback_id"))
    if not feedback_id:
        # A stable id, so importing the same file twice does not duplicate rows.
        digest = hashlib.sha256(f"{instruction}\x00{output}\x00{model_name}\x00{timestamp}".encode()).hexdigest()
        feedback_id = f"fb-{digest[:24]}"
    return {
        "instruction": instruction, "input": _as_text(_pick(entry, "input")), "output": output,
        "rating": rating, "model_name": model_name, "feedback_id": feedback_id,
        "timestamp": "" if timestamp is None else str(timestamp),
    }


class FeedbackReport:
    def __init__(self):
        self.entries = 0
        self.kept = 0
        self.dropped: Counter[str] = Counter()
        self.problems: list[dict] = []

    def problem(self, reason: str, file: str, where: str, detail: str = "") -> None:
        self.dropped[reason] += 1
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append({"reason": reason, "file": file, "line": where, "detail": detail[:200]})

    def as_dict(self) -> dict:
        return {"entries": self.entries, "kept": self.kept, "dropped": dict(self.dropped), "problems": self.problems}


def _raw_entries(path: Path, report: FeedbackReport) -> Iterator[tuple[str, Any]]:
    """(where, entry) for every entry of a JSON or JSONL file; bad lines reported and skipped."""
    name = str(path)
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"["):
        try:
            data = json.loads(path.read_bytes().decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            report.problem("encoding", name, "-", str(exc))
            return
        except ValueError as exc:
            report.problem("malformed_json", name, str(getattr(exc, "lineno", "-")), str(exc))
            return
        for position, entry in enumerate(data, start=1):
            yield f"#{position}", entry
        return
    with open(path, "rb") as fh:
        lines = list(enumerate(fh, start=1))
    if head.startswith(b"{") and len([1 for _, raw in lines if raw.strip()]) > 0:
        # One object holding the list, pretty-printed over several lines?
        try:
            whole = json.loads(b"".join(raw for _, raw in lines).decode("utf-8-sig"))
        except (ValueError, UnicodeDecodeError):
            whole = None
        if isinstance(whole, dict):
            for key in LIST_KEYS:
                if isinstance(whole.get(key), list):
                    for position, entry in enumerate(whole[key], start=1):
                        yield f"#{position}", entry
                    return
    for line_no, raw in lines:
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            report.problem("encoding", name, str(line_no), str(exc))
            continue
        try:
            yield str(line_no), json.loads(text)
        except ValueError as exc:
            report.problem("malformed_json", name, str(line_no), str(exc))


def read_feedback_file(path: str | Path, *, min_rating: int = DEFAULT_MIN_RATING,
                       model_name: str | None = None) -> tuple[list[dict], dict]:
    """The usable entries of a feedback file (rating ≥ min_rating, of `model_name` if given) and a report."""
    path = Path(path)
    if not path.is_file():
        raise ApplicationError(f"反馈文件不存在：{path}", code="not_found")
    if not 1 <= int(min_rating) <= 5:
        raise ApplicationError("最低评分须在 1–5 之间")
    report = FeedbackReport()
    entries: list[dict] = []
    seen: set[str] = set()
    for where, raw in _raw_entries(path, report):
        report.entries += 1
        try:
            entry = parse_entry(raw)
        except FeedbackRejected as exc:
            report.problem(exc.reason, str(path), where, exc.detail)
            continue
        if entry["rating"] < min_rating:
            report.dropped["below_min_rating"] += 1
            continue
        if model_name and entry["model_name"] != model_name:
            report.dropped["other_model"] += 1
            continue
        if entry["feedback_id"] in seen:
            report.problem("duplicate_id", str(path), where, entry["feedback_id"])
            continue
        seen.add(entry["feedback_id"])
        entries.append(entry)
    report.kept = len(entries)
    return entries, report.as_dict()


# --------------------------------------------------------------------------- the seed's outputs

def entry_to_record(entry: dict) -> dict:
    """A feedback entry (or a FeedbackSample's values) as a builder record."""
    record = {"id": entry["feedback_id"], "source": "feedback", "prompt": entry["instruction"],
              "response": entry["output"],
              "meta": {"rating": entry["rating"], "model_name": entry["model_name"]}}
    if entry.get("input"):
        record["input"] = entry["input"]
    return record


def write_feedback_outputs(entries: list[dict], output_dir: str | Path,
                           formats: tuple[str, ...] = OUTPUT_FORMATS) -> dict[str, str]:
    """Write the seed's outputs: json/jsonl with every field, alpaca through the builder.

    Returns {format: path}. Unknown formats raise ApplicationError.
    """
    from . import formats as training_formats

    unknown = set(formats) - set(OUTPUT_FORMATS)
    if unknown:
        raise ApplicationError(f"未知输出格式：{', '.join(sorted(unknown))}；可选 json, jsonl, alpaca")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    fields = ("instruction", "input", "output", "rating", "model_name", "feedback_id", "timestamp")
    written: dict[str, str] = {}
    for fmt in formats:
        path = out / OUTPUT_FILE_NAMES[fmt]
        if fmt in {"json", "jsonl"}:
            training_formats.write_rows(path, ({k: e[k] for k in fields} for e in entries), fmt)
        else:
            # The seed's alpaca is the plain three-key record, in file order.
            options = BuildOptions(format="alpaca", dedup=False, shuffle=False, dataset_name="feedback_alpaca")
            build_dataset([Source("feedback", [entry_to_record(e) for e in entries])], options, output=path)
        written[fmt] = str(path)
    return written


# --------------------------------------------------------------------------- import (job kind)

def import_feedback_entries(*, job: Job | None, entries: list[dict]) -> dict:
    """Create FeedbackSample rows for entries not imported yet; existing rows (and reviews) are kept."""
    created = 0
    for start in range(0, len(entries), 500):
        chunk = entries[start:start + 500]
        with transaction.atomic():
            existing = set(FeedbackSample.objects.filter(feedback_id__in=[e["feedback_id"] for e in chunk])
                           .values_list("feedback_id", flat=True))
            new = [
                FeedbackSample(
                    job=job, feedback_id=e["feedback_id"][:255], instruction=e["instruction"], input=e["input"],
                    output=e["output"], rating=e["rating"], model_name=e["model_name"][:200],
                    rated_at=parse_rated_at(e["timestamp"]),
                )
                for e in chunk if e["feedback_id"] not in existing
            ]
            FeedbackSample.objects.bulk_create(new, ignore_conflicts=True)
            created += len(new)
    return {"created": created, "already_imported": len(entries) - created}


@register
class FeedbackImportHandler(JobKindHandler):
    """Import a feedback file into FeedbackSample rows; the file is the job's one item."""

    kind = JobKind.FEEDBACK_IMPORT
    queue = "extraction"
    uses_llm = False

    def clean_params(self, params: dict[str, Any]) -> dict[str, Any]:
        path = params.get("feedback_file")
        if not path or not Path(path).is_file():
            raise ApplicationError(f"反馈文件不存在：{path}", code="not_found")
        try:
            min_rating = int(params.get("min_rating", DEFAULT_MIN_RATING))
        except (TypeError, ValueError):
            raise ApplicationError("最低评分须是 1–5 的整数") from None
        if not 1 <= min_rating <= 5:
            raise ApplicationError("最低评分须在 1–5 之间")
        return {"feedback_file": str(Path(path).resolve()), "min_rating": min_rating,
                "model_name": params.get("model_name") or None}

    def item_keys(self, job: Job) -> list[str]:
        return [Path(job.params["feedback_file"]).name]

    def prepare(self, job: Job, key: str) -> str:
        path = Path(job.params["feedback_file"])
        if not path.is_file():
            raise ItemFailed("missing_file", f"文件不存在：{path}")
        return str(path)

    def store(self, job: Job, key: str, payload: str, output: Any) -> dict:
        try:
            entries, report = read_feedback_file(payload, min_rating=job.params["min_rating"],
                                                 model_name=job.params.get("model_name"))
        except (OSError, ApplicationError) as exc:
            raise ItemFailed("unreadable", str(exc)) from exc
        return {**report, **import_feedback_entries(job=job, entries=entries)}

    def finalize(self, job: Job) -> dict[str, Any]:
        results = [item.result or {} for item in job.items.all()]
        total = {"entries": 0, "kept": 0, "created": 0, "already_imported": 0, "dropped": Counter(), "problems": []}
        for result in results:
            for key in ("entries", "kept", "created", "already_imported"):
                total[key] += result.get(key, 0)
            total["dropped"].update(result.get("dropped", {}))
            total["problems"] += result.get("problems", [])
        total["dropped"] = dict(total["dropped"])
        total["problems"] = total["problems"][:MAX_LISTED_PROBLEMS]
        return total
