"""Reads of the generation pages: runs with their counts, the failure analysis from the rows, the
failed-example review queue, re-run comparisons and a run's training set (with provenance)."""
from __future__ import annotations

from collections import Counter
from typing import Any

from django.db.models import Count, Q

from ..models import GeneratedExample, ItemStatus, Job, JobKind, ReviewDecision
from .analysis import analyze
from .run_files import example_record

def run_examples(job: Job):
    """The examples one run produced, with their source items (no re-runs)."""
    return GeneratedExample.objects.filter(job=job).select_related("source_item").order_by("id")


def example_to_record(example: GeneratedExample) -> dict:
    """A row as a team-format record plus `attributes` and `decision` for the analysis."""
    record = example_record(example)
    record["attributes"] = example.source_item.attributes or {}
    record["decision"] = example.decision
    return record


def run_analysis(job: Job) -> dict[str, Any]:
    """The failure analysis of one run, from the database (plain values, no model instances)."""
    passed, failed = [], []
    rows = (
        GeneratedExample.objects.filter(job=job)
        .order_by("id")
        .values_list("example_id", "question", "response", "is_multiple_choice", "overall_score", "passed",
                     "failure_reasons", "decision", "source_item__attributes")
    )
    for example_id, question, response, mc, score, ok, reasons, decision, attributes in rows.iterator(chunk_size=2000):
        record = {"id": example_id, "question": question, "response": response, "is_multiple_choice": mc,
                  "overall_score": score, "attributes": attributes or {}, "decision": decision}
        if ok:
            passed.append(record)
        else:
            record["failure_reason"] = reasons or []
            failed.append(record)
    errors = job.items.filter(status=ItemStatus.FAILED).count()
    return analyze(passed, failed, generation_errors=errors)


def generation_runs():
    """Original generation runs (re-runs are shown under their run), newest first, with counts."""
    return (
        Job.objects.filter(kind=JobKind.GENERATION, parent__isnull=True)
        .select_related("created_by")
        .annotate(
            example_count=Count("generated_examples", distinct=True),
            passed_count=Count("generated_examples", filter=Q(generated_examples__passed=True), distinct=True),
            rerun_count=Count("reruns", distinct=True),
        )
        .order_by("-created_at")
    )


def failed_examples(job: Job, *, reason: str = "", decision: str = ""):
    """A run's failed examples for review, optionally only those with `reason` / `decision`."""
    qs = GeneratedExample.objects.filter(job=job, passed=False).select_related("source_item", "decided_by")
    if decision:
        qs = qs.filter(decision=decision)
    if reason:
        # JSON list containment is not portable to SQLite; filter the (small) id list in Python.
        ids = [pk for pk, reasons in qs.values_list("pk", "failure_reasons") if reason in (reasons or [])]
        qs = qs.filter(pk__in=ids)
    return qs.order_by("id")


def failed_reason_counts(job: Job) -> list[tuple[str, int]]:
    """Failure reasons of a run's failed examples with counts, most common first."""
    counts = Counter()
    for reasons in GeneratedExample.objects.filter(job=job, passed=False).values_list("failure_reasons", flat=True):
        counts.update(set(reasons or []))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


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
