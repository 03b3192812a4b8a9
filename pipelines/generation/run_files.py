"""The team's files of a run (generated_examples.jsonl, failed_examples.jsonl, pipeline_report.json,
checkpoint.json) in the record format of their original pipeline, written from the rows."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from django.utils import timezone

from core import files

from ..models import GeneratedExample, Job, SourceItem

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
    from ..models import ItemStatus

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


def write_jsonl(path: Path, records) -> int:
    count = 0
    with files.atomic_open(path) as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_checkpoint(job: Job, directory: str | Path) -> None:
    """checkpoint.json: which job writes this directory and how many items it has processed."""
    from ..models import ItemStatus

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
    write_jsonl(directory / "generated_examples.jsonl", (example_record(e) for e in examples if e.passed))
    failed_path = directory / "failed_examples.jsonl"
    if examples.filter(passed=False).exists():
        write_jsonl(failed_path, (example_record(e) for e in examples.filter(passed=False)))
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
