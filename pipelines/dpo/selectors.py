"""Reads of the DPO pages: jobs with their pair counts, a job's pairs by issue and decision, the
job report as the pairs stand now, and the records an export writes."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from django.db.models import Q

from ..models import Job, JobKind, PreferencePair, ReviewDecision
from . import checks
from .pairs import job_context

# A pair's review status as the DPO pages name it. "rejected" is DPO's own word for the worse answer,
# so a discarded pair reads 已丢弃 (the stored value stays ReviewDecision.REJECTED).
DECISION_LABELS = {
    ReviewDecision.PENDING: "待审核",
    ReviewDecision.ACCEPTED: "已接受",
    ReviewDecision.EDITED: "已修改",
    ReviewDecision.REJECTED: "已丢弃",
}


# --------------------------------------------------------------------------- selectors
def dpo_jobs():
    """DPO jobs, newest first, with their pair counts (one query)."""
    from django.db.models import Count

    return (
        Job.objects.filter(kind=JobKind.DPO)
        .select_related("created_by")
        .annotate(
            pair_count=Count("preference_pairs"),
            discarded_count=Count("preference_pairs", filter=Q(preference_pairs__decision=ReviewDecision.REJECTED)),
        )
        .order_by("-created_at")
    )


def job_pairs(*, job: Job, issue: str = "", decision: str = ""):
    """The pairs of a job, optionally only those with one issue or one decision ("flagged" = any issue)."""
    rows = PreferencePair.objects.filter(job=job).select_related("decided_by").order_by("id")
    if issue == "flagged":
        rows = rows.exclude(issues=[])
    elif issue == "clean":
        rows = rows.filter(issues=[])
    elif issue in checks.ISSUE_NAMES:
        # JSON containment is not portable to SQLite; the issue names are plain strings in a list.
        rows = rows.filter(issues__icontains=f'"{issue}"')
    if decision in ReviewDecision.values:
        rows = rows.filter(decision=decision)
    return rows


def job_report(job: Job) -> dict[str, Any]:
    """The job's ranked issues as the pairs stand now (reviewers edit them), plus decision counts."""
    rows = list(PreferencePair.objects.filter(job=job).values_list("issues", "decision"))
    report = checks.batch_report([issues for issues, _ in rows], (job.report or {}).get("boilerplate_clusters", []))
    decisions = Counter(decision for _, decision in rows)
    report["decisions"] = dict(decisions)
    report["decision_rows"] = [(DECISION_LABELS[value], decisions[value]) for value in DECISION_LABELS if decisions[value]]
    report["context"] = job_context(job.params)
    report["failed_items"] = (job.report or {}).get("failed_items", {})
    report["n_ignored"] = (job.report or {}).get("n_ignored")
    return report


def export_records(*, job: Job, include_flagged: bool = False, counts: Counter | None = None) -> Iterator[dict]:
    """Builder records for a job's pairs: discarded pairs never; flagged pending pairs only if asked.

    A pair a reviewer accepted or edited is exported whatever its check results.
    """
    counts = counts if counts is not None else Counter()
    rows = PreferencePair.objects.filter(job=job).order_by("id").values_list(
        "key", "source", "prompt", "chosen", "rejected", "images", "issues", "decision"
    )
    for key, source, prompt, chosen, rejected, images, issues, decision in rows.iterator(chunk_size=2000):
        if decision == ReviewDecision.REJECTED:
            counts["discarded"] += 1
            continue
        if issues and decision == ReviewDecision.PENDING and not include_flagged:
            counts["flagged_pending"] += 1
            continue
        counts["exported"] += 1
        record = {"id": key, "prompt": prompt, "chosen": chosen, "rejected": rejected}
        if images:
            record["images"] = list(images)
        yield record
