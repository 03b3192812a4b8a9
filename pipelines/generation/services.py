"""Generation + judge: visual question/answer training examples, validated by a second model call.

For each source item (an image with its wiki title and optional facts) the job asks the vision
model for a question — open or multiple choice, by a configurable ratio — and for a response in the
form `<look>…</look><think>…</think><answer>…</answer>`. The response's structure is checked before
the judge sees it (a missing tag is a failure reason of its own and costs no judge call); the judge
scores it (`pipelines/judge.py`). Every example becomes a `GeneratedExample` row, passed or failed,
and a run can write the team's files (`generated_examples.jsonl`, `failed_examples.jsonl`,
`pipeline_report.json`, `checkpoint.json`) in the record format of their original pipeline.

Sections: response structure · question type · prompts · source import · records and files ·
the job kind · services (overrule, re-run, export).
"""
from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import ApplicationError, conflict_error
from core.jsonfiles import oversize_message, record_size

from core import files
from . import judge as judge_module
from .jobs.kinds import ItemFailed, JobKindHandler, register
from .models import GeneratedExample, Job, JobKind, ReviewDecision, SourceItem

# --------------------------------------------------------------------------- response structure
TAGS = ("look", "think", "answer")
REASON_OUT_OF_ORDER = "Tags out of order"


def missing_tag_reason(tag: str) -> str:
    """The failure reason for a response without `<tag>…</tag>` (one reason per tag)."""
    return f"Missing <{tag}> tag"



def check_structure(response: str) -> list[str]:
    """Structure problems of a response: each missing or unclosed tag, then tags out of order."""
    problems: list[str] = []
    spans: list[int] = []
    for tag in TAGS:
        match = re.search(rf"<{tag}>(.*?)</{tag}>", response or "", re.S)
        if not match or not match.group(1).strip():
            problems.append(missing_tag_reason(tag))
        else:
            spans.append(match.start())
    if not problems and spans != sorted(spans):
        problems.append(REASON_OUT_OF_ORDER)
    return problems


def response_part(response: str, tag: str) -> str:
    """The text inside `<tag>…</tag>` of a response ('' when absent)."""
    match = re.search(rf"<{tag}>(.*?)</{tag}>", response or "", re.S)
    return match.group(1).strip() if match else ""


# --------------------------------------------------------------------------- question type
def is_multiple_choice_for(external_id: str, *, ratio: float, seed: int) -> bool:
    """Whether the item gets a multiple-choice question: a stable draw, so a resume agrees."""
    digest = hashlib.sha256(f"{seed}:{external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < ratio


# --------------------------------------------------------------------------- prompts
# First lines double as markers the LLM simulator's responders recognise.
QUESTION_SYSTEM_PROMPT = """You write questions for visual question answering training data.
Look at the image and its wiki title and write ONE question that can only be answered by looking
carefully at the image and reasoning about it. Output the question only."""
QUESTION_KIND_OPEN = "Question type: open. Write an open question (no options)."
QUESTION_KIND_CHOICE = (
    "Question type: multiple choice. Write the question, then four options on their own lines "
    "as 'A. …', 'B. …', 'C. …', 'D. …' with exactly one correct option."
)
RESPONSE_SYSTEM_PROMPT = """You answer visual questions for training data, showing your work.
Write the response exactly as <look>what you see in the image that matters</look><think>step-by-step
reasoning from what you see and the facts</think><answer>the final answer</answer>. For a multiple
choice question the answer starts with the option letter."""


def source_context(item: SourceItem | dict) -> str:
    """The source item's title and facts as prompt text."""
    title = item["wiki_title"] if isinstance(item, dict) else item.wiki_title
    facts = item["facts"] if isinstance(item, dict) else item.facts
    fact_lines = "\n".join(f"- {f}" for f in facts) or "(none)"
    return f"Wiki title: {title}\nFacts:\n{fact_lines}"


def question_messages(payload: dict, params: dict) -> list[dict]:
    """Messages asking for a question about the payload's image."""
    kind = QUESTION_KIND_CHOICE if payload["is_multiple_choice"] else QUESTION_KIND_OPEN
    return [
        {"role": "system", "content": QUESTION_SYSTEM_PROMPT},
        {"role": "user", "content": f"{source_context(payload)}\n\n{kind}"},
    ]


def response_messages(payload: dict, question: str, params: dict) -> list[dict]:
    """Messages asking for the <look>/<think>/<answer> response to `question`."""
    return [
        {"role": "system", "content": RESPONSE_SYSTEM_PROMPT},
        {"role": "user", "content": f"{source_context(payload)}\n\nQuestion:\n{question}"},
    ]


# --------------------------------------------------------------------------- source import
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


@transaction.atomic
def source_items_import(*, text: str, collection: str, sample: int | None = None, seed: int = 42) -> ImportReport:
    """Import source items from JSON/JSONL text into `collection`; bad records are reported, not fatal.

    Re-importing updates items by their id, so an import can be repeated safely.
    """
    if not collection.strip():
        raise ApplicationError("请指定来源集合名称")
    raw, problems = read_source_records(text)
    report = ImportReport(collection=collection, problems=problems)
    parsed = []
    seen: set[str] = set()
    for line, record in raw:
        try:
            fields = parse_source_record(record, line=line)
        except ValueError as exc:
            report.problems.append(ImportProblem(line, str(exc)))
            continue
        if fields["external_id"] in seen:
            report.problems.append(ImportProblem(line, f"重复的 id {fields['external_id']}，已跳过"))
            continue
        seen.add(fields["external_id"])
        parsed.append(fields)
    report.problems.sort(key=lambda p: p.line)
    existing = {
        item.external_id: item
        for item in SourceItem.objects.filter(collection=collection, external_id__in=[p["external_id"] for p in parsed])
    }
    to_create, to_update = [], []
    for fields in sample_records(parsed, sample, seed=seed):
        item = existing.get(fields["external_id"])
        if item is None:
            to_create.append(SourceItem(collection=collection, **fields))
        else:
            for name, value in fields.items():
                setattr(item, name, value)
            to_update.append(item)
        report.external_ids.append(fields["external_id"])
    SourceItem.objects.bulk_create(to_create, batch_size=500)
    if to_update:
        SourceItem.objects.bulk_update(to_update, ["image", "wiki_title", "facts", "attributes"], batch_size=500)
    report.created, report.updated = len(to_create), len(to_update)
    return report


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


# --------------------------------------------------------------------------- records and files
DEFAULT_PARAMS = {
    "multiple_choice_ratio": 0.3,
    "pass_threshold": judge_module.DEFAULT_PASS_THRESHOLD,
    "temperature": 0.7,
    "seed": 42,
}


def _timestamp(moment) -> str:
    # The team's files carry naive local timestamps with microseconds.
    return timezone.localtime(moment).replace(tzinfo=None).isoformat(timespec="microseconds")


def make_example_id(source: SourceItem, *, multiple_choice: bool, moment) -> str:
    """An id in the team's shape: gpt_<8 hex of the source>_<type>_<unix seconds>."""
    digest = hashlib.sha256(f"{source.collection}:{source.external_id}".encode()).hexdigest()[:8]
    return f"gpt_{digest}_{'mcq' if multiple_choice else 'open'}_{int(moment.timestamp())}"


def example_record(example: GeneratedExample) -> dict:
    """The row as a record of generated_examples.jsonl / failed_examples.jsonl (the seed's format)."""
    record = {
        "id": example.example_id,
        "image": example.source_item.image,
        "wiki_title": example.source_item.wiki_title,
        "question": example.question,
        "response": example.response,
        "is_multiple_choice": example.is_multiple_choice,
        "validation_result": example.validation_result,
    }
    if not example.passed:
        record["failure_reason"] = list(example.failure_reasons)
    record["overall_score"] = example.overall_score
    record["timestamp"] = _timestamp(example.created_at)
    return record


def pipeline_report(job: Job) -> dict:
    """pipeline_report.json for a run: the team's pipeline_stats plus reasons and settings."""
    from .models import ItemStatus

    examples = list(GeneratedExample.objects.filter(job=job).values_list("passed", "is_multiple_choice",
                                                                         "failure_reasons", "validation_result"))
    # An answer whose judge call failed is kept (to be judged again) but its item is a generation
    # error: counted there, not as a failed validation.
    judge_errors = sum(1 for *_, result in examples if (result or {}).get("stage") == "judge_error")
    examples = [row[:3] for row in examples if (row[3] or {}).get("stage") != "judge_error"]
    status_counts = Counter(job.items.values_list("status", flat=True))
    error_kinds = Counter(job.items.filter(status=ItemStatus.FAILED).values_list("error_kind", flat=True))
    valid = sum(1 for passed, _, _ in examples if passed)
    failed = len(examples) - valid
    reasons = Counter(r for passed, _, rs in examples if not passed for r in dict.fromkeys(rs or []))
    return {
        "pipeline_stats": {
            "total_items": sum(status_counts.values()),
            "processed_items": status_counts.get(ItemStatus.DONE, 0) + status_counts.get(ItemStatus.FAILED, 0),
            "valid_examples": valid,
            "failed_validation": failed,
            "generation_errors": status_counts.get(ItemStatus.FAILED, 0),
            "judge_errors": judge_errors,
            "pass_rate": round(valid / len(examples), 4) if examples else None,
            "multiple_choice_examples": sum(1 for _, mc, _ in examples if mc),
            "open_examples": sum(1 for _, mc, _ in examples if not mc),
        },
        "failure_reasons": dict(reasons.most_common()),
        "generation_error_kinds": dict(error_kinds.most_common()),
        "config": {k: v for k, v in job.params.items() if k not in {"source_ids", "output_dir"}},
        "job_id": job.pk,
        "parent_job_id": job.parent_id,
        "generated_at": _timestamp(timezone.now()),
    }


def _write_jsonl(path: Path, records) -> int:
    count = 0
    with files.atomic_open(path) as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_checkpoint(job: Job, directory: str | Path) -> None:
    """checkpoint.json: which job writes this directory and how many items it has processed."""
    from .models import ItemStatus

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    processed = job.items.filter(status__in=[ItemStatus.DONE, ItemStatus.FAILED]).count()
    data = {"job_id": job.pk, "collection": job.params.get("collection"), "processed_items": processed,
            "total_items": job.items.count(), "updated_at": _timestamp(timezone.now())}
    files.atomic_write_text(directory / "checkpoint.json", json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def write_run_files(job: Job, directory: str | Path) -> dict:
    """Write the team's files for a run from its rows; returns the pipeline report.

    The files are rewritten whole from the database, so a resumed run never duplicates a line.
    As in the team's pipeline, failed_examples.jsonl exists only when something failed.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    examples = GeneratedExample.objects.filter(job=job).select_related("source_item").order_by("id")
    _write_jsonl(directory / "generated_examples.jsonl", (example_record(e) for e in examples if e.passed))
    failed_path = directory / "failed_examples.jsonl"
    if examples.filter(passed=False).exists():
        _write_jsonl(failed_path, (example_record(e) for e in examples.filter(passed=False)))
    elif failed_path.exists():
        failed_path.unlink()
    report = pipeline_report(job)
    files.atomic_write_text(directory / "pipeline_report.json", json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    write_checkpoint(job, directory)
    return report


def append_run_files(job: Job, directory: str | Path, state: dict) -> None:
    """Mid-run: add the examples stored since the last call to the team's files and rewrite
    checkpoint.json, so `wc -l generated_examples.jsonl` follows a running job as it did the team's
    script. `state` (kept by the caller for one execution) remembers the last example written; on its
    first call the files are rewritten whole from the rows (a resumed run, or a line a killed execution
    left half-written). The end of the run rewrites them whole again (write_run_files)."""
    directory = Path(directory)
    examples = GeneratedExample.objects.filter(job=job)
    if "last_id" not in state:
        write_run_files(job, directory)
        state["last_id"] = examples.order_by("-id").values_list("id", flat=True).first() or 0
        return
    new = list(examples.filter(id__gt=state["last_id"]).select_related("source_item").order_by("id"))
    if new:
        for name, rows in (("generated_examples.jsonl", [e for e in new if e.passed]),
                           ("failed_examples.jsonl", [e for e in new if not e.passed])):
            if rows:
                with open(directory / name, "a", encoding="utf-8", newline="\n") as fh:
                    fh.write("".join(json.dumps(example_record(e), ensure_ascii=False) + "\n" for e in rows))
        state["last_id"] = new[-1].id
    write_checkpoint(job, directory)


# --------------------------------------------------------------------------- the job kind
def _float_param(params: dict, name: str, low: float, high: float) -> float:
    try:
        value = float(params.get(name, DEFAULT_PARAMS[name]))
    except (TypeError, ValueError):
        raise ApplicationError(f"{name} 必须是数字") from None
    if not low <= value <= high:
        raise ApplicationError(f"{name} 必须在 {low:g} 到 {high:g} 之间")
    return value


def _with_image(messages: list[dict], image_url: str | None) -> list[dict]:
    if not image_url:
        return messages
    out = [dict(m) for m in messages]
    user = out[-1]
    user["content"] = [{"type": "image_url", "image_url": {"url": image_url}}, {"type": "text", "text": user["content"]}]
    return out


@register
class GenerationHandler(JobKindHandler):
    """Per source item: question → response → structure check → judge → one GeneratedExample row."""

    kind = JobKind.GENERATION
    queue = "generation"

    def clean_params(self, params: dict[str, Any]) -> dict[str, Any]:
        collection = str(params.get("collection") or "").strip()
        if not collection:
            raise ApplicationError("请选择来源集合")
        if not SourceItem.objects.filter(collection=collection).exists():
            raise ApplicationError(f"来源集合 {collection} 中没有数据，请先导入")
        cleaned = {
            "collection": collection,
            "multiple_choice_ratio": _float_param(params, "multiple_choice_ratio", 0, 1),
            "pass_threshold": _float_param(params, "pass_threshold", 0, 10),
            "temperature": _float_param(params, "temperature", 0, 2),
        }
        try:
            cleaned["seed"] = int(params.get("seed", DEFAULT_PARAMS["seed"]))
            sample = params.get("sample")
            cleaned["sample"] = int(sample) if sample not in (None, "") else None
        except (TypeError, ValueError):
            raise ApplicationError("seed 和 sample 必须是整数") from None
        if cleaned["sample"] is not None and cleaned["sample"] <= 0:
            raise ApplicationError("样本数必须大于 0")
        for name in ("model", "judge_model"):
            if params.get(name):
                cleaned[name] = str(params[name])[:200]
        for name in judge_module.JUDGE_PARAMS:
            try:
                value = judge_module.clean_judge_param(name, params.get(f"judge_{name}"))
            except ValueError as exc:
                raise ApplicationError(str(exc)) from None
            if value is not None:
                cleaned[f"judge_{name}"] = value
        if params.get("rejudge"):
            cleaned["rejudge"] = True
        if params.get("source_ids") is not None:
            cleaned["source_ids"] = [str(x) for x in params["source_ids"]]
        if params.get("output_dir"):
            cleaned["output_dir"] = str(params["output_dir"])
        if params.get("rerun_changes"):
            cleaned["rerun_changes"] = params["rerun_changes"]
        # Provider overrides (concurrency, requests_per_minute, …) are the engine's to validate.
        for name in ("top_p", "max_tokens", "concurrency", "requests_per_minute", "timeout", "max_retries"):
            if params.get(name) not in (None, ""):
                cleaned[name] = params[name]
        return cleaned

    def item_keys(self, job: Job):
        if job.params.get("source_ids") is not None:
            return list(job.params["source_ids"])
        ids = list(SourceItem.objects.filter(collection=job.params["collection"]).order_by("external_id")
                   .values_list("external_id", flat=True))
        return sample_records(ids, job.params.get("sample"), seed=job.params.get("seed", 42))

    def prepare(self, job: Job, key: str) -> dict:
        from .llm.client import image_data_url

        source = SourceItem.objects.filter(collection=job.params["collection"], external_id=key).first()
        if source is None:
            raise ItemFailed("source_missing", f"来源 {key} 不存在")
        existing = GeneratedExample.objects.filter(job=job, source_item=source).first()
        if existing is not None and not _judge_failed(existing):
            # Stored before an interruption: do not pay for the model calls again.
            return {"source_id": source.pk, "done": True}
        is_multiple_choice = is_multiple_choice_for(
            source.external_id, ratio=job.params["multiple_choice_ratio"], seed=job.params.get("seed", 42))
        # An answer generated before, whose judging failed (or a re-judge run): judge it again, do
        # not generate it again.
        reuse = existing
        if reuse is None and job.parent_id:
            reuse = GeneratedExample.objects.filter(job_id=job.parent_id, source_item=source).first()
            if reuse is not None and not (job.params.get("rejudge") or _judge_failed(reuse)):
                reuse = None
        if reuse is not None and reuse.response:
            return {"source_id": source.pk, "done": False, "judge_only": True, "question": reuse.question,
                    "response": reuse.response, "wiki_title": source.wiki_title, "facts": list(source.facts),
                    "is_multiple_choice": reuse.is_multiple_choice}
        image_url = None
        if source.image:
            # A question about an image the model cannot see would be worthless training data.
            from core.images import inspect_image

            image_path = resolve_image(source.image)
            if image_path is None:
                raise ItemFailed("image_missing", f"图片不存在或不在 MEDIA_ROOT 内：{source.image}")
            try:
                inspect_image(image_path)
            except ApplicationError as exc:
                raise ItemFailed("image_invalid", exc.message) from None
            image_url = image_data_url(image_path)
        return {
            "source_id": source.pk,
            "done": False,
            "wiki_title": source.wiki_title,
            "facts": list(source.facts),
            "is_multiple_choice": is_multiple_choice,
            "image_url": image_url,
        }

    async def call(self, llm, payload: dict, params: dict[str, Any]) -> dict | None:
        from .llm.errors import LLMError

        if payload["done"]:
            return None
        temperature = params.get("temperature", DEFAULT_PARAMS["temperature"])
        vision_model = params.get("model") or settings.LLM_VISION_MODEL
        threshold = params.get("pass_threshold", DEFAULT_PARAMS["pass_threshold"])
        sampling = {"temperature": temperature, "top_p": params.get("top_p"), "max_tokens": params.get("max_tokens")}
        if payload.get("judge_only"):
            question, response = payload["question"], payload["response"]
        else:
            try:
                question = (await llm.chat(_with_image(question_messages(payload, params), payload["image_url"]),
                                           model=vision_model, **sampling)).text.strip()
                response = (await llm.chat(_with_image(response_messages(payload, question, params),
                                                       payload["image_url"]),
                                           model=vision_model, **sampling)).text.strip()
            except LLMError as exc:
                raise ItemFailed(exc.kind, f"生成失败: {exc.message}") from None
        output = {"question": question, "response": response, "judge_raw": "", "structure_problems": check_structure(response)}
        if output["structure_problems"]:
            return output  # a broken structure fails without a judge call
        messages = judge_module.build_judge_messages(
            wiki_title=payload["wiki_title"], facts=payload["facts"], question=question, response=response,
            threshold=threshold,
        )
        try:
            output["judge_raw"] = (await llm.chat(messages, model=params.get("judge_model") or settings.LLM_JUDGE_MODEL,
                                                  **judge_module.judge_request_params(params))).text
        except LLMError as exc:
            # Only the judge failed: the generated answer is kept (store) and judged again later.
            output["judge_error"] = {"kind": exc.kind, "message": f"评判失败: {exc.message}"}
        return output

    def store(self, job: Job, key: str, payload: dict, output: dict | None) -> dict:
        source = SourceItem.objects.get(pk=payload["source_id"])
        if output is None:
            example = GeneratedExample.objects.get(job=job, source_item=source)
            return _item_result(example)
        threshold = job.params.get("pass_threshold", DEFAULT_PARAMS["pass_threshold"])
        fields = {"question": output["question"], "response": output["response"], "judge_raw": output["judge_raw"],
                  "is_multiple_choice": payload["is_multiple_choice"]}
        problems = output["structure_problems"]
        judge_error = output.get("judge_error")
        if judge_error:
            reasons = [judge_module.REASON_JUDGE_FAILED]
            fields.update(structure_ok=True, passed=False, overall_score=None, failure_reasons=reasons,
                          validation_result={"overall_score": None, "pass": False, "issues": reasons,
                                             "stage": "judge_error", "error": judge_error["message"]})
        elif problems:
            fields.update(structure_ok=False, passed=False, overall_score=None, failure_reasons=problems,
                          validation_result={"overall_score": None, "pass": False, "issues": problems,
                                             "stage": "structure"})
        else:
            try:
                verdict = judge_module.parse_verdict(output["judge_raw"], threshold=threshold)
            except judge_module.VerdictUnparseable as exc:
                reasons = [judge_module.REASON_UNPARSEABLE]
                fields.update(structure_ok=True, passed=False, overall_score=None, failure_reasons=reasons,
                              validation_result={"overall_score": None, "pass": False, "issues": reasons,
                                                 "stage": "judge", "error": str(exc)})
            else:
                fields.update(structure_ok=True, passed=verdict.passed, overall_score=verdict.overall_score,
                              failure_reasons=judge_module.failure_reasons_for(verdict),
                              validation_result={**verdict.as_validation_result(), "stage": "judge"})
        now = timezone.now()
        example, created = GeneratedExample.objects.get_or_create(
            job=job, source_item=source,
            defaults={**fields, "example_id": make_example_id(source, multiple_choice=payload["is_multiple_choice"],
                                                              moment=now)},
        )
        if not created:  # a redelivered item: keep one row, with the latest answer
            for name, value in fields.items():
                setattr(example, name, value)
            example.save(update_fields=[*fields, "updated_at"])
        if judge_error:
            raise ItemFailed(judge_error["kind"], judge_error["message"])  # the row above is kept
        return _item_result(example)

    def checkpoint(self, job: Job, state: dict) -> None:
        """The engine's mid-run hook: grow the team's files while the run goes on."""
        if job.params.get("output_dir"):
            append_run_files(job, job.params["output_dir"], state)

    def finalize(self, job: Job) -> dict[str, Any]:
        if job.params.get("output_dir"):
            return write_run_files(job, job.params["output_dir"])
        return pipeline_report(job)


def _judge_failed(example: GeneratedExample) -> bool:
    """Whether the example's answer was generated but its judge call failed."""
    return (example.validation_result or {}).get("stage") == "judge_error"


def _item_result(example: GeneratedExample) -> dict:
    return {"example_id": example.example_id, "passed": example.passed, "overall_score": example.overall_score,
            "failure_reasons": list(example.failure_reasons)}


# --------------------------------------------------------------------------- services
def can_overrule(user) -> bool:
    """Any signed-in, active user may overrule the judge: generated examples belong to no category,
    so the category assignments that limit reviewers elsewhere do not apply here."""
    return bool(user and user.is_authenticated and user.is_active)


@transaction.atomic
def generated_example_decide(
    *, example: GeneratedExample, user, decision: str, version: int, edited_response: str = ""
) -> GeneratedExample:
    """Overrule the judge on a failed example: accept as is, accept an edited response, or reject.

    `version` is the version the reviewer saw; a newer one means someone decided in between.
    """
    if not can_overrule(user):
        raise ApplicationError("请先登录", code="forbidden")
    if decision not in {ReviewDecision.ACCEPTED, ReviewDecision.EDITED, ReviewDecision.REJECTED}:
        raise ApplicationError("未知的决定")
    example = GeneratedExample.objects.select_for_update().get(pk=example.pk)
    if example.passed:
        raise ApplicationError("该样本已通过评判，无需人工复核")
    if example.version != version:
        who = example.decided_by.get_username() if example.decided_by else "其他人"
        raise conflict_error(f"该样本已被 {who} 修改（版本 {example.version}），请刷新后再决定",
                             current_version=example.version, changed_by=who)
    edited_response = (edited_response or "").strip()
    if decision == ReviewDecision.EDITED:
        if not edited_response:
            raise ApplicationError("修改后接受需要填写修改后的回答")
        problems = check_structure(edited_response)
        if problems:
            raise ApplicationError("修改后的回答结构不完整：" + "，".join(problems))
        if edited_response == example.response.strip():
            decision = ReviewDecision.ACCEPTED  # nothing was changed
            edited_response = ""
    else:
        edited_response = ""
    if decision == ReviewDecision.ACCEPTED and check_structure(example.response):
        # A response without its tags would teach the wrong format: fix it, then accept.
        raise ApplicationError("回答结构不完整，不能原样接受；请补全标签后“修改后接受”")
    example.decision = decision
    example.edited_response = edited_response
    example.decided_by = user
    example.decided_at = timezone.now()
    example.version += 1
    example.save(update_fields=["decision", "edited_response", "decided_by", "decided_at", "version", "updated_at"])
    return example


RERUN_SETTINGS = ("temperature", "multiple_choice_ratio", "pass_threshold", "model", "judge_model",
                  "judge_temperature", "judge_top_p", "judge_max_tokens")
# Changing only these re-judges the stored answers instead of generating new ones.
JUDGE_SETTINGS = ("pass_threshold", "judge_model", "judge_temperature", "judge_top_p", "judge_max_tokens")


@transaction.atomic
def generation_rerun_failed(*, job: Job, user, changes: dict[str, Any]) -> Job:
    """A new job over the run's failed items nobody has decided on yet, with changed settings.

    The re-run's parent is the original run, so before/after pass rates can be compared.
    """
    from .jobs.services import job_create

    if job.kind != JobKind.GENERATION or job.parent_id is not None:
        raise ApplicationError("只能对原始生成任务重跑失败项")
    if job.is_active:
        raise ApplicationError("任务仍在运行，结束后才能重跑失败项")
    unknown = set(changes) - set(RERUN_SETTINGS)
    if unknown:
        raise ApplicationError(f"不能修改的设置：{', '.join(sorted(unknown))}")
    changed = {}
    for name, value in changes.items():
        if value in (None, ""):
            continue
        try:
            if name.startswith("judge_") and name != "judge_model":
                value = judge_module.clean_judge_param(name.removeprefix("judge_"), value)
            else:
                value = float(value) if name not in {"model", "judge_model"} else str(value)
        except (TypeError, ValueError) as exc:
            raise ApplicationError(str(exc) if isinstance(exc, ValueError) and "评判" in str(exc)
                                   else f"{name} 必须是数字") from None
        if value != job.params.get(name, DEFAULT_PARAMS.get(name)):
            changed[name] = value
    if not changed:
        raise ApplicationError("请至少修改一项生成设置再重跑")
    keys = list(
        GeneratedExample.objects.filter(job=job, passed=False, decision=ReviewDecision.PENDING)
        .order_by("id").values_list("source_item__external_id", flat=True)
    )
    if not keys:
        raise ApplicationError("没有待处理的失败样本可以重跑")
    params = {k: v for k, v in job.params.items() if k not in {"output_dir", "sample"}}
    params.update(changed)
    params["source_ids"] = keys
    if set(changed) <= set(JUDGE_SETTINGS):
        params["rejudge"] = True  # the answers stay; only the verdicts are asked for again
    params["rerun_changes"] = {k: {"before": job.params.get(k, DEFAULT_PARAMS.get(k)), "after": v} for k, v in changed.items()}
    return job_create(kind=JobKind.GENERATION, params=params, user=user, parent=job)


def rerun_comparison(job: Job) -> list[dict]:
    """Per re-run of `job`: the setting changed, pass rate of those items before (0) and after,
    and the run's overall pass rate before and with the re-run's passes counted."""
    from django.db.models import Count, Q

    total = GeneratedExample.objects.filter(job=job).count()
    passed_before = GeneratedExample.objects.filter(job=job, passed=True).count()
    reruns = (
        Job.objects.filter(parent=job, kind=JobKind.GENERATION)
        .annotate(done=Count("generated_examples"),
                  rescued=Count("generated_examples", filter=Q(generated_examples__passed=True)))
        .order_by("created_at")
    )
    rows = []
    for rerun in reruns:
        n, rescued = rerun.done, rerun.rescued
        rows.append({
            "job": rerun,
            "changes": rerun.params.get("rerun_changes", {}),
            "items": len(rerun.params.get("source_ids") or []),
            "done": n,
            "passed": rescued,
            "items_pass_rate_before": 0.0 if n else None,
            "items_pass_rate_after": round(rescued / n, 4) if n else None,
            "run_pass_rate_before": round(passed_before / total, 4) if total else None,
            "run_pass_rate_after": round((passed_before + rescued) / total, 4) if total else None,
        })
    return rows


PROVENANCE_JUDGE = "judge_passed"
PROVENANCE_RERUN = "rerun_passed"
PROVENANCE_ACCEPTED = "human_accepted"
PROVENANCE_EDITED = "human_edited"
PROVENANCE_LABELS = {
    PROVENANCE_JUDGE: "评判通过", PROVENANCE_RERUN: "重跑通过",
    PROVENANCE_ACCEPTED: "人工接受", PROVENANCE_EDITED: "人工修改",
}
EXPORT_FORMATS = ("sharegpt_multimodal", "openai")


def training_examples(job: Job) -> list[tuple[GeneratedExample, str]]:
    """The run's training set: judge-passed examples (of the run or a re-run) and human-rescued
    ones, one per source item, with their provenance. Human-rejected examples never appear."""
    family = [job.pk, *Job.objects.filter(parent=job, kind=JobKind.GENERATION).values_list("pk", flat=True)]
    examples = (
        GeneratedExample.objects.filter(job_id__in=family)
        .exclude(decision=ReviewDecision.REJECTED)
        .filter(models_q_passed_or_rescued())
        .select_related("source_item", "decided_by")
        .order_by("source_item_id", "-job_id")
    )
    chosen: dict[int, tuple[GeneratedExample, str]] = {}
    rank = {PROVENANCE_EDITED: 0, PROVENANCE_ACCEPTED: 0, PROVENANCE_JUDGE: 1, PROVENANCE_RERUN: 1}
    for example in examples:
        if example.decision == ReviewDecision.EDITED:
            provenance = PROVENANCE_EDITED
        elif example.decision == ReviewDecision.ACCEPTED:
            provenance = PROVENANCE_ACCEPTED
        else:
            provenance = PROVENANCE_JUDGE if example.job_id == job.pk else PROVENANCE_RERUN
        current = chosen.get(example.source_item_id)
        # A human's decision wins over a judge's pass; otherwise the latest run wins (ordering).
        if current is None or rank[provenance] < rank[current[1]]:
            chosen[example.source_item_id] = (example, provenance)
    return sorted(chosen.values(), key=lambda pair: pair[0].pk)


def training_example_count(job: Job) -> int:
    """How many examples `training_examples` would give (one per source item), in one query."""
    family = [job.pk, *Job.objects.filter(parent=job, kind=JobKind.GENERATION).values_list("pk", flat=True)]
    return (
        GeneratedExample.objects.filter(job_id__in=family).exclude(decision=ReviewDecision.REJECTED)
        .filter(models_q_passed_or_rescued()).values("source_item_id").distinct().count()
    )


def models_q_passed_or_rescued():
    from django.db.models import Q

    return Q(passed=True) | Q(decision__in=[ReviewDecision.ACCEPTED, ReviewDecision.EDITED])


def training_record(example: GeneratedExample, provenance: str) -> dict:
    """One example as a builder record (formats.py contract); images relative to MEDIA_ROOT."""
    response = example.edited_response if example.decision == ReviewDecision.EDITED else example.response
    images = [example.source_item.image] if example.source_item.image else []
    return {
        "id": example.example_id,
        "prompt": ("<image>" * len(images)) + example.question,
        "response": response,
        "images": images,
        "meta": {"provenance": provenance, "job": example.job_id, "overall_score": example.overall_score},
    }


def generation_export(*, job: Job, user, formats: tuple[str, ...] = EXPORT_FORMATS):
    """Export the run's passed + rescued examples as sharegpt-with-images and OpenAI messages.

    Written through the dataset builder into a new export folder (`pipelines.datasets.exports`), with the
    LLaMA-Factory dataset_info.json entries and provenance.jsonl marking each example's origin
    (judge_passed, rerun_passed, human_accepted, human_edited). Returns the Export row.
    """
    from .datasets.builder import build_dataset
    from .datasets.options import BuildOptions, Source
    from .datasets.exports import ExportContent, export_create

    if not (user and user.is_staff):
        raise ApplicationError("只有管理员可以导出", code="forbidden")
    pairs = training_examples(job)
    if not pairs:
        raise ApplicationError("没有可导出的样本（没有通过或被人工接受的样本）")
    by_provenance = Counter(p for _, p in pairs)

    def write(directory: Path) -> ExportContent:
        written, reports, entries = {}, {}, {}
        for fmt in formats:
            records = [training_record(e, p) for e, p in pairs]
            if fmt == "openai":
                # OpenAI messages carry text only: no image column, no <image> token.
                records = [{**r, "prompt": r["prompt"].replace("<image>", ""), "images": []} for r in records]
            sources = [Source(p, [r for r, (_, prov) in zip(records, pairs) if prov == p]) for p in by_provenance]
            result = build_dataset(
                sources,
                BuildOptions(format=fmt, dedup=False, shuffle=False, dataset_name=f"generation_run{job.pk}_{fmt}"),
                output=directory / f"generation_{fmt}.json",
            )
            written[fmt] = Path(result.files["all"]).name
            entries.update(result.report["dataset_info"])
            reports[fmt] = {"total": result.total, "dataset_info": result.report.get("dataset_info"),
                            "invalid_examples": result.report.get("invalid_examples")}
        _write_jsonl(directory / "provenance.jsonl", (
            {"id": e.example_id, "provenance": p, "job": e.job_id, "source": e.source_item.external_id,
             "overall_score": e.overall_score,
             "decided_by": e.decided_by.get_username() if e.decided_by else None}
            for e, p in pairs
        ))
        return ExportContent(row_count=len(pairs), dataset_info=entries, report={
            "files": written, "provenance": dict(by_provenance), "formats": reports})

    return export_create(kind="generation", fmt=",".join(formats), write=write, user=user,
                         params={"job": job.pk}, label=f"run{job.pk}")
