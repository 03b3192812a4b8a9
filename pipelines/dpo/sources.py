"""Where a DPO job's prompts and chosen answers come from: the prompt-source registry and the
sources of this app (feedback, generation, logs, an imported JSONL file).

A source is a `PromptSource` named in settings.DPO_PROMPT_SOURCES (name → "module.attribute"), in
the order the start form lists them. Apps above pipelines add theirs there (review: the corrected
mode-3 training set, `review/dpo_sources.py`), so this package never imports them.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils.module_loading import import_string

from core.errors import ApplicationError

from ..jobs.kinds import ItemFailed
from ..models import FeedbackSample, GeneratedExample, LogRecord, ReviewDecision
from .checks import message_text

@dataclass(frozen=True)
class PromptRecord:
    """One input of a DPO job: a prompt and its chosen answer, with a key stable within the source."""

    key: str
    source: str
    prompt: str
    chosen: str
    system: str = ""
    images: tuple[str, ...] = ()


class PromptSource:
    """A source of prompts with chosen answers. Subclass and name an instance in DPO_PROMPT_SOURCES."""

    label: str = ""

    def clean(self, source: dict[str, Any]) -> dict[str, Any]:
        """The source's own parameters, validated (ApplicationError if bad); name, job_id and model_name aside."""
        return {}

    def records(self, source: dict[str, Any]) -> Iterator[PromptRecord]:
        """The source's records, in a stable order (the order items and previews use)."""
        raise NotImplementedError

    def record(self, source: dict[str, Any], key: str, *, cache_token: Any = None) -> PromptRecord | None:
        """The record of one key, or None. By default the whole source is indexed once per `cache_token`."""
        return _record_index(json.dumps(source, sort_keys=True), cache_token).get(key)

    def choices(self) -> list[str]:
        """What the start form offers to pick within the source (the review source: dataset names)."""
        return []


def prompt_sources() -> dict[str, PromptSource]:
    """The registered sources by name, in the order of settings.DPO_PROMPT_SOURCES."""
    return {name: import_string(path) for name, path in settings.DPO_PROMPT_SOURCES.items()}


def prompt_source(name: str) -> PromptSource | None:
    """The source registered under `name`, or None."""
    path = settings.DPO_PROMPT_SOURCES.get(name)
    return import_string(path) if path else None


def source_labels() -> dict[str, str]:
    """Source name → the label pages and the command show."""
    return {name: source.label for name, source in prompt_sources().items()}


def import_path(relative: str) -> Path:
    """The imported file under MEDIA_ROOT; ApplicationError for anything outside it."""
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise ApplicationError("导入文件不存在或不在允许的目录中")
    return path


# --------------------------------------------------------------------------- database sources
class QuerySource(PromptSource):
    """Rows of this app's tables: a queryset (the filters) and a row → record mapping, so one item reads one row."""

    def __init__(self, label: str, rows: Callable[[dict], Any], to_record: Callable[[Any], PromptRecord]):
        self.label = label
        self.rows = rows
        self.to_record = to_record

    def records(self, source: dict[str, Any]) -> Iterator[PromptRecord]:
        for row in self.rows(source).order_by("id").iterator(chunk_size=2000):
            yield self.to_record(row)

    def record(self, source: dict[str, Any], key: str, *, cache_token: Any = None) -> PromptRecord | None:
        ident = key.partition(":")[2]
        if not ident.isdigit():
            return None
        row = self.rows(source).filter(pk=int(ident)).first()
        return self.to_record(row) if row is not None else None


def _feedback_rows(source: dict):
    rows = FeedbackSample.objects.filter(decision__in=[ReviewDecision.ACCEPTED, ReviewDecision.EDITED])
    if source.get("job_id"):
        rows = rows.filter(job_id=source["job_id"])
    if source.get("model_name"):
        rows = rows.filter(model_name=source["model_name"])
    return rows


def _feedback_record(row: FeedbackSample) -> PromptRecord:
    prompt = f"{row.instruction}\n{row.input}" if row.input else row.instruction
    chosen = row.edited_output if row.decision == ReviewDecision.EDITED and row.edited_output else row.output
    return PromptRecord(f"feedback:{row.pk}", "feedback", prompt, chosen)


def _generation_rows(source: dict):
    # Passed by the judge and not rejected by a reviewer, or rescued by a reviewer.
    rows = GeneratedExample.objects.filter(
        Q(passed=True) & ~Q(decision=ReviewDecision.REJECTED)
        | Q(decision__in=[ReviewDecision.ACCEPTED, ReviewDecision.EDITED])
    ).select_related("source_item")
    if source.get("job_id"):
        rows = rows.filter(job_id=source["job_id"])
    return rows


def _generation_record(row: GeneratedExample) -> PromptRecord:
    chosen = row.edited_response if row.decision == ReviewDecision.EDITED and row.edited_response else row.response
    images = (row.source_item.image,) if row.source_item.image else ()
    prompt = f"<image>{row.question}" if images and "<image>" not in row.question else row.question
    return PromptRecord(f"generation:{row.pk}", "generation", prompt, chosen, images=images)


def _log_rows(source: dict):
    rows = LogRecord.objects.all()
    if source.get("job_id"):
        rows = rows.filter(job_id=source["job_id"])
    if source.get("model_name"):
        rows = rows.filter(model_name=source["model_name"])
    return rows


def _log_record(row: LogRecord) -> PromptRecord:
    return PromptRecord(f"logs:{row.pk}", "logs", row.prompt, row.response)


FEEDBACK = QuerySource("用户反馈（已接受 / 修改后接受）", _feedback_rows, _feedback_record)
GENERATION = QuerySource("生成样本（评判通过或人工挽回）", _generation_rows, _generation_record)
LOGS = QuerySource("调用日志提取的问答对", _log_rows, _log_record)


# --------------------------------------------------------------------------- imported file
def _file_record(record: Any, line_no: int) -> PromptRecord:
    if not isinstance(record, dict):
        raise ValueError("a record must be a JSON object")
    if "prompt" in record:
        prompt = message_text(record["prompt"], role="user|human")
    elif "instruction" in record:
        prompt = str(record["instruction"] or "")
        if record.get("input"):
            prompt = f"{prompt}\n{record['input']}"
    else:
        raise ValueError("missing key 'prompt' (or 'instruction')")
    for name in ("chosen", "output", "response", "completion"):
        if name in record:
            chosen = message_text(record[name], role="assistant|gpt")
            break
    else:
        raise ValueError("missing key 'chosen' (or 'output', 'response', 'completion')")
    if not prompt.strip() or not chosen.strip():
        raise ValueError("empty prompt or chosen answer")
    record_id = record.get("id", line_no)
    return PromptRecord(f"file:{record_id}", "file", prompt, chosen, system=str(record.get("system") or ""))


@lru_cache(maxsize=4)
def _read_import(path: str, mtime: float) -> tuple[tuple[PromptRecord, ...], tuple[tuple[int, str], ...]]:
    records, errors, seen = [], [], set()
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8-sig" if line_no == 1 else "utf-8").strip()
                if not text:
                    continue
                record = _file_record(json.loads(text), line_no)
            except UnicodeDecodeError:
                errors.append((line_no, "not UTF-8"))
                continue
            except json.JSONDecodeError as exc:
                errors.append((line_no, f"invalid JSON: {exc.msg}"))
                continue
            except ValueError as exc:
                errors.append((line_no, str(exc)))
                continue
            if record.key in seen:
                errors.append((line_no, f"duplicate id {record.key[5:]!r}"))
                continue
            seen.add(record.key)
            records.append(record)
    return tuple(records), tuple(errors)


def read_import(relative: str) -> tuple[tuple[PromptRecord, ...], tuple[tuple[int, str], ...]]:
    """Records of an imported JSONL file and its malformed lines as (line number, reason)."""
    path = import_path(relative)
    return _read_import(str(path), path.stat().st_mtime)


class FileSource(PromptSource):
    """An imported JSONL file under MEDIA_ROOT."""

    label = "导入 JSONL 文件"

    def clean(self, source: dict[str, Any]) -> dict[str, Any]:
        if not source.get("path"):
            raise ApplicationError("请上传 JSONL 文件")
        import_path(source["path"])
        return {"path": str(source["path"])}

    def records(self, source: dict[str, Any]) -> Iterator[PromptRecord]:
        yield from read_import(source["path"])[0]


FILE = FileSource()


# --------------------------------------------------------------------------- reading a source
def iter_source_records(source: dict) -> Iterator[PromptRecord]:
    """The records of a source, in a stable order (the order items and previews use)."""
    provider = prompt_source(source["name"])
    if provider is None:
        raise ApplicationError(f"未知数据来源 {source['name']!r}")
    yield from provider.records(source)


def source_keys(params: dict) -> list[str]:
    """The keys of a job's prompts (its items), honouring the limit."""
    keys = []
    for record in iter_source_records(params["source"]):
        keys.append(record.key)
        if params.get("limit") and len(keys) >= params["limit"]:
            break
    return keys


def source_record(source: dict, key: str, *, cache_token: Any = None) -> PromptRecord:
    """The record of one key (one query for database sources); ItemFailed when it is gone.

    Other sources are indexed whole once per `cache_token` (the job id).
    """
    name = key.partition(":")[0]
    provider = prompt_source(name) if name == source["name"] else None
    record = provider.record(source, key, cache_token=cache_token) if provider is not None else None
    if record is None:
        raise ItemFailed("missing_source", f"来源中找不到 {key}")
    return record


@lru_cache(maxsize=4)
def _record_index(source_json: str, cache_token: Any) -> dict[str, PromptRecord]:
    """Key → record for file and classification sources, built once per job (cache_token = job id)."""
    return {record.key: record for record in iter_source_records(json.loads(source_json))}
