"""Every write on jobs: create (one item per key, queued after commit), cancel, resume, retry the
failed items; and running a job in this process (tests, `--inline` CLI runs)."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.errors import ApplicationError

from ..models import ItemStatus, Job, JobItem, JobStatus
from .engine import job_execute
from .kinds import get_handler
from .leases import job_lease_alive, refresh_counters
from .params import clean_engine_params
from .selectors import ACTIVE_STATUSES, JobProgress
from .tasks import job_enqueue

def _enqueue_on_commit(job: Job) -> None:
    job_id, kind = job.pk, job.kind
    transaction.on_commit(lambda: job_enqueue(job_id, kind))


@transaction.atomic
def job_create(
    *,
    kind: str,
    params: dict[str, Any],
    user=None,
    parent: Job | None = None,
    item_keys: Iterable[str] | None = None,
    enqueue: bool = True,
) -> Job:
    """Create a job with one item per key (the handler's, or `item_keys`) and queue it after commit.

    `enqueue=False` leaves the job queued without a message, for `run_job_inline` (CLI `--inline`).
    """
    try:
        handler = get_handler(kind)
    except LookupError:
        raise ApplicationError(f"未知的任务类型：{kind}") from None
    params = clean_engine_params(handler.clean_params(dict(params or {})))
    job = Job.objects.create(
        kind=kind,
        params=params,
        created_by=user if user is not None and user.is_authenticated else None,
        parent=parent,
        status=JobStatus.QUEUED,
    )
    keys = list(dict.fromkeys(str(k) for k in (item_keys if item_keys is not None else handler.item_keys(job))))
    if not keys:
        raise ApplicationError("没有需要处理的条目")
    too_long = next((k for k in keys if len(k) > 255), None)
    if too_long:
        raise ApplicationError(f"条目标识过长：{too_long[:40]}…")
    JobItem.objects.bulk_create([JobItem(job=job, key=key) for key in keys], batch_size=1000)
    job.items_total = len(keys)
    job.save(update_fields=["items_total"])
    if enqueue:
        _enqueue_on_commit(job)
    return job


@transaction.atomic
def job_cancel(*, job: Job, user=None) -> Job:
    """Stop a job: nothing new is dispatched; done items stay done; the rest can be resumed."""
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.status not in ACTIVE_STATUSES:
        raise ApplicationError("任务已结束，不能取消")
    if job.status == JobStatus.QUEUED or not job_lease_alive(job):
        # Nobody is running it: cancel right away.
        JobItem.objects.filter(job=job, status=ItemStatus.RUNNING).update(status=ItemStatus.PENDING)
        job.status = JobStatus.CANCELLED
        job.finished_at = timezone.now()
        job.lease_token = ""
        job.save(update_fields=["status", "finished_at", "lease_token"])
    else:
        job.status = JobStatus.CANCELLING
        job.save(update_fields=["status"])
    refresh_counters(job.pk)
    job.refresh_from_db()
    return job


@transaction.atomic
def job_resume(*, job: Job, user=None) -> Job:
    """Run the items of a job that have no outcome yet (pending, or interrupted while running).

    Failed items keep their outcome; use `job_retry_failed` for them.
    """
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.status in (JobStatus.RUNNING, JobStatus.CANCELLING) and job_lease_alive(job):
        raise ApplicationError("任务正在运行")
    remaining = job.items.exclude(status__in=[ItemStatus.DONE, ItemStatus.FAILED]).count()
    if not remaining:
        raise ApplicationError("没有未完成的条目（失败的条目请用“重试失败条目”）")
    JobItem.objects.filter(job=job, status=ItemStatus.RUNNING).update(status=ItemStatus.PENDING)
    job.status = JobStatus.QUEUED
    job.deliveries = 0
    job.finished_at = None
    job.lease_token = ""
    job.heartbeat_at = None
    job.enqueued_at = None
    job.save(update_fields=["status", "deliveries", "finished_at", "lease_token", "heartbeat_at", "enqueued_at"])
    _enqueue_on_commit(job)
    return job


@transaction.atomic
def job_retry_failed(*, job: Job, user, params: dict[str, Any] | None = None) -> Job:
    """A new job (child of `job`) over the failed items only, optionally with changed parameters.

    The retry keeps the job's parameters except the kind's `repinned_on_retry` ones (the prompt
    version), which are pinned afresh to the newest version unless `params` gives them.
    """
    if job.is_active:
        raise ApplicationError("任务还在运行，结束后再重试失败条目")
    keys = list(job.items.filter(status=ItemStatus.FAILED).order_by("id").values_list("key", flat=True))
    if not keys:
        raise ApplicationError("没有失败的条目")
    repinned = get_handler(job.kind).repinned_on_retry
    inherited = {k: v for k, v in job.params.items() if k not in repinned}
    return job_create(kind=job.kind, params={**inherited, **(params or {})}, user=user, parent=job, item_keys=keys)


def run_job_inline(job: Job, *, on_progress: Callable[[JobProgress], None] | None = None) -> Job:
    """Run all of a job's pending items in this process (tests, `--inline` CLI runs); returns it updated."""
    while True:
        outcome = job_execute(job_id=job.pk, on_progress=on_progress)
        if outcome != "continue":
            break
    job.refresh_from_db()
    return job
