"""Reads of the datasets area: the feedback page's list and counts, and the builder records of what
the product holds (imported log rows, feedback samples) offered as the builder's sources."""
from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, F, QuerySet

from pipelines.models import FeedbackSample, LogRecord, ReviewDecision

from .feedback import entry_to_record
from .options import BuildError, Source


# --------------------------------------------------------------------------- feedback samples

def feedback_sample_list(*, rating: int | None = None, model_name: str = "", date_from=None, date_to=None,
                         decision: str = "") -> QuerySet[FeedbackSample]:
    """Feedback samples matching the page's filters, newest rating first, reviewers joined."""
    qs = FeedbackSample.objects.select_related("decided_by")
    if rating:
        qs = qs.filter(rating=rating)
    if model_name:
        qs = qs.filter(model_name=model_name)
    if date_from:
        qs = qs.filter(rated_at__date__gte=date_from)
    if date_to:
        qs = qs.filter(rated_at__date__lte=date_to)
    if decision:
        qs = qs.filter(decision=decision)
    # Unknown rating times last on every database (PostgreSQL puts NULLs first when descending).
    return qs.order_by(F("rated_at").desc(nulls_last=True), "id")


def feedback_model_names() -> list[str]:
    return list(FeedbackSample.objects.exclude(model_name="").order_by("model_name")
                .values_list("model_name", flat=True).distinct())


def feedback_decision_counts() -> dict[str, int]:
    counts = dict(FeedbackSample.objects.values_list("decision").annotate(n=Count("id")).order_by())
    return {d: counts.get(d, 0) for d in ReviewDecision.values}


def sample_to_record(sample: FeedbackSample) -> dict:
    """A reviewed FeedbackSample as a builder record (the edited output when there is one)."""
    record = entry_to_record({
        "feedback_id": sample.feedback_id, "instruction": sample.instruction, "input": sample.input,
        "output": sample.edited_output or sample.output, "rating": sample.rating, "model_name": sample.model_name,
    })
    record["meta"]["decision"] = sample.decision
    return record


def feedback_records(*, min_rating: int = 1, model_name: str = "", only_reviewed: bool = False) -> Iterator[dict]:
    """Builder records of feedback samples: rejected ones never, pending ones unless `only_reviewed`."""
    qs = FeedbackSample.objects.exclude(decision=ReviewDecision.REJECTED).filter(rating__gte=min_rating)
    if model_name:
        qs = qs.filter(model_name=model_name)
    if only_reviewed:
        qs = qs.filter(decision__in=[ReviewDecision.ACCEPTED, ReviewDecision.EDITED])
    for sample in qs.order_by("id").iterator(chunk_size=2000):
        yield sample_to_record(sample)


# --------------------------------------------------------------------------- imported log rows

def log_record_to_record(row: LogRecord) -> dict:
    """A LogRecord row as a builder record."""
    return {
        "id": f"{row.source_file}:{row.line_no}",
        "source": "logs",
        "prompt": row.prompt,
        "response": row.response,
        "meta": {"file": row.source_file, "line": row.line_no, "model_name": row.model_name, "job": row.job_id},
    }


def imported_log_records(*, job_id: int | None = None) -> Iterator[dict]:
    """Builder records of imported LogRecord rows (one import job, or all), streamed from the DB."""
    rows = LogRecord.objects.order_by("source_file", "line_no")
    if job_id is not None:
        rows = rows.filter(job_id=job_id)
    for row in rows.iterator(chunk_size=2000):
        yield log_record_to_record(row)


# --------------------------------------------------------------------------- the builder's product sources

def product_sources(*, logs: bool = False, logs_job_id: int | None = None, feedback: bool = False,
                    feedback_min_rating: int = 1, feedback_model: str = "", feedback_only_reviewed: bool = False,
                    caps: dict[str, int | None] | None = None,
                    weights: dict[str, float | None] | None = None) -> list[Source]:
    """The sources the product offers the builder form and `build_dataset` command: imported log
    records (one import job or all) and feedback samples (rejected ones never), each with an
    optional cap and weight. Re-readable: each source is a callable."""
    caps, weights = caps or {}, weights or {}
    sources = []
    if logs:
        sources.append(Source("logs", lambda: imported_log_records(job_id=logs_job_id),
                              cap=caps.get("logs"), weight=weights.get("logs")))
    if feedback:
        sources.append(Source("feedback", lambda: feedback_records(
            min_rating=feedback_min_rating, model_name=feedback_model, only_reviewed=feedback_only_reviewed),
            cap=caps.get("feedback"), weight=weights.get("feedback")))
    if not sources:
        raise BuildError("请至少选择一个数据源")
    return sources
