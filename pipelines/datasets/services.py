"""Writes of the datasets area: starting the log and feedback import jobs, and a reviewer's decision
on a feedback sample (keyword-only, atomic where they write rows)."""
from __future__ import annotations

from pathlib import Path

from django.db import transaction
from django.utils import timezone

from core.errors import ApplicationError, decision_version_check
from pipelines.jobs.services import job_create, run_job_inline
from pipelines.models import FeedbackSample, Job, JobKind, ReviewDecision

from .feedback import DEFAULT_MIN_RATING


# --------------------------------------------------------------------------- import jobs

def log_extraction_job_start(*, log_dir: str | Path, user=None) -> Job:
    """Queue a "log_extraction" job importing every .jsonl file under `log_dir` (one item per file)."""
    return job_create(kind=JobKind.LOG_EXTRACTION, params={"log_dir": str(log_dir)}, user=user)


def log_extraction_job_run(*, log_dir: str | Path, user=None) -> Job:
    """Create the import job and run it in this process (the command line); returns it finished."""
    return run_job_inline(log_extraction_job_start(log_dir=log_dir, user=user))


def feedback_import_job_start(*, feedback_file: str | Path, min_rating: int = DEFAULT_MIN_RATING,
                              model_name: str | None = None, user=None) -> Job:
    """Queue a "feedback_import" job for one feedback file."""
    params = {"feedback_file": str(feedback_file), "min_rating": min_rating, "model_name": model_name}
    return job_create(kind=JobKind.FEEDBACK_IMPORT, params=params, user=user)


def feedback_import_job_run(*, feedback_file: str | Path, min_rating: int = DEFAULT_MIN_RATING,
                            model_name: str | None = None, user=None) -> Job:
    """Create the import job and run it in this process (the command line); returns it finished."""
    job = feedback_import_job_start(feedback_file=feedback_file, min_rating=min_rating, model_name=model_name,
                                    user=user)
    return run_job_inline(job)


# --------------------------------------------------------------------------- review services

def can_review_feedback(user) -> bool:
    """Any signed-in, active user may review feedback samples: they belong to no category, so the
    category assignments that limit reviewers elsewhere do not apply (as for generated examples)."""
    return bool(user and user.is_authenticated and user.is_active)


REVIEW_DECISIONS = (ReviewDecision.ACCEPTED, ReviewDecision.EDITED, ReviewDecision.REJECTED)


@transaction.atomic
def feedback_sample_decide(*, sample: FeedbackSample, user, decision: str, version: int,
                           edited_output: str = "") -> FeedbackSample:
    """Accept a feedback sample, accept it with an edited output, or reject it.

    `version` is the version the reviewer saw; if someone decided in between, raise
    code="conflict" and change nothing. An edit identical to the output counts as accepting.
    """
    if not can_review_feedback(user):
        raise ApplicationError("请先登录", code="forbidden")
    if decision not in REVIEW_DECISIONS:
        raise ApplicationError("未知的决定")
    sample = FeedbackSample.objects.select_for_update(of=("self",)).select_related("decided_by").get(pk=sample.pk)
    decision_version_check(sample, version)
    edited_output = (edited_output or "").strip()
    if decision == ReviewDecision.EDITED:
        if not edited_output:
            raise ApplicationError("修改后接受需要填写修改后的回答")
        if edited_output == sample.output.strip():
            decision, edited_output = ReviewDecision.ACCEPTED, ""
    else:
        edited_output = ""
    sample.decision = decision
    sample.edited_output = edited_output
    sample.decided_by = user
    sample.decided_at = timezone.now()
    sample.version += 1
    sample.save(update_fields=["decision", "edited_output", "decided_by", "decided_at", "version"])
    return sample
