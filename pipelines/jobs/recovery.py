"""Jobs whose message or execution was lost: sent again by a starting worker and by the workers'
sweeper (pipelines/jobs/workers.py). Duplicates are harmless: the lease makes all but one delivery
a no-op."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ..models import Job, JobStatus
from .leases import job_lease_alive
from .tasks import job_enqueue

logger = logging.getLogger(__name__)

def jobs_enqueue_unsent(*, older_than: float = 2.0) -> list[int]:
    """Send the messages of queued jobs whose enqueue failed (the broker was down); workers call
    this every few seconds."""
    cutoff = timezone.now() - timedelta(seconds=older_than)
    sent = []
    for job_id, kind in Job.objects.filter(status=JobStatus.QUEUED, enqueued_at__isnull=True,
                                           created_at__lt=cutoff).values_list("id", "kind")[:100]:
        if job_enqueue(job_id, kind):
            sent.append(job_id)
    if sent:
        logger.info("sent the messages of queued jobs %s", sent)
    return sent


def jobs_recover_stale() -> list[int]:
    """Send the message again for running jobs whose execution died (lease not renewed) while the
    workers kept running; workers call this every few seconds. A worker's start catches most of them
    (jobs_recover_orphaned), but not a lease that still looked alive then: a worker on another machine
    killed moments before. Sent at most once per lease period per job; extra copies are no-ops."""
    lease = settings.JOB_LEASE_SECONDS
    cutoff = timezone.now() - timedelta(seconds=lease)
    sent = []
    candidates = Job.objects.filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=cutoff),
        status__in=[JobStatus.RUNNING, JobStatus.CANCELLING],
    ).only("id", "kind", "status", "lease_token", "heartbeat_at")[:100]
    for job in candidates:
        if not job_lease_alive(job) and job_enqueue(job.pk, job.kind):
            sent.append(job.pk)
    if sent:
        logger.info("re-enqueued jobs whose execution stopped %s", sent)
    return sent


def jobs_recover_orphaned() -> list[int]:
    """Re-enqueue jobs whose execution died (stale lease) or whose message may have been lost with a
    killed worker (queued for a while); called when a worker starts. Duplicates are harmless: the
    lease makes all but one delivery a no-op."""
    recovered = []
    waiting_since = timezone.now() - timedelta(seconds=settings.JOB_LEASE_SECONDS)
    candidates = Job.objects.filter(
        Q(status__in=[JobStatus.RUNNING, JobStatus.CANCELLING]) | Q(status=JobStatus.QUEUED, created_at__lt=waiting_since)
    ).only("id", "kind", "status", "lease_token", "heartbeat_at")
    for job in candidates:
        if not job_lease_alive(job):
            job_enqueue(job.pk, job.kind)
            recovered.append(job.pk)
    if recovered:
        logger.info("re-enqueued orphaned jobs %s", recovered)
    return recovered
