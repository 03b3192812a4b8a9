"""Who runs a job: the lease an execution holds (Job.lease_token + heartbeat_at), how a dead one is
recognised (stale heartbeat, or an owner process on this host that is gone), and the item counters
and states that taking, renewing and releasing a lease change."""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from ..models import ItemStatus, Job, JobItem, JobStatus
from .selectors import ACTIVE_STATUSES


def refresh_counters(job_id: int) -> tuple[int, int]:
    """Recount the job's done / failed / total items from its rows; (done, failed)."""
    counts = dict(JobItem.objects.filter(job_id=job_id).values_list("status").annotate(n=Count("id")))
    done, failed = counts.get(ItemStatus.DONE, 0), counts.get(ItemStatus.FAILED, 0)
    Job.objects.filter(pk=job_id).update(items_done=done, items_failed=failed, items_total=sum(counts.values()))
    return done, failed


def new_lease_token() -> str:
    """A lease token naming this execution: host, process, thread and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:10]}"


def _owner_dead(token: str) -> bool:
    """Whether the lease owner was a process on this host that no longer runs."""
    try:
        host, pid, _ = token.split(":", 2)
        pid = int(pid)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A process that has exited but was not reaped yet still answers kill(pid, 0). A SIGKILLed
    worker's pool child, whose parent died with it, is one until PID 1 reaps it (which some container
    inits never do). Linux only (/proc); elsewhere a process that answers counts as alive."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except FileNotFoundError:
        return True  # gone since kill()
    except (OSError, IndexError):
        return False
    return state in (b"Z", b"X")


def job_lease_alive(job: Job) -> bool:
    """Whether a live execution holds the job's lease (recent heartbeat, owner process alive)."""
    if not job.lease_token or job.heartbeat_at is None:
        return False
    age = (timezone.now() - job.heartbeat_at).total_seconds()
    return age < settings.JOB_LEASE_SECONDS and not _owner_dead(job.lease_token)


def _fail_remaining(job: Job, kind: str, message: str) -> None:
    JobItem.objects.filter(job=job).exclude(status__in=[ItemStatus.DONE, ItemStatus.FAILED]).update(
        status=ItemStatus.FAILED, error_kind=kind, error=message, finished_at=timezone.now()
    )


@transaction.atomic
def lease_acquire(job_id: int, token: str) -> tuple[str, Job | None]:
    """Take the job's lease for `token`: ("run", job), or why not ("missing", "finished", "busy",
    "cancelled", "failed" after too many deliveries) and None."""
    job = Job.objects.select_for_update().filter(pk=job_id).first()
    if job is None:
        return "missing", None
    if job.status not in ACTIVE_STATUSES:
        return "finished", None
    if job.lease_token and job_lease_alive(job):
        return "busy", None
    now = timezone.now()
    # Items a dead execution had claimed go back to the queue (their attempt stays counted).
    JobItem.objects.filter(job=job, status=ItemStatus.RUNNING).update(status=ItemStatus.PENDING)
    if job.status == JobStatus.CANCELLING:
        job.status, job.finished_at, job.lease_token = JobStatus.CANCELLED, now, ""
        job.save(update_fields=["status", "finished_at", "lease_token"])
        return "cancelled", None
    job.deliveries += 1
    max_deliveries = settings.JOB_MAX_DELIVERIES
    if job.deliveries > max_deliveries:
        message = f"任务消息已投递 {job.deliveries} 次仍未完成，放弃剩余条目"
        _fail_remaining(job, "max_deliveries", message)
        job.status, job.finished_at, job.lease_token = JobStatus.FAILED, now, ""
        job.error_summary = message
        job.save(update_fields=["status", "finished_at", "lease_token", "error_summary", "deliveries"])
        refresh_counters(job.pk)
        return "failed", None
    job.lease_token, job.heartbeat_at, job.status = token, now, JobStatus.RUNNING
    job.started_at = job.started_at or now
    job.save(update_fields=["lease_token", "heartbeat_at", "status", "started_at", "deliveries"])
    return "run", job


def lease_heartbeat(job_id: int, token: str) -> str | None:
    """Renew the lease; the job's status, or None when the lease was lost."""
    if not Job.objects.filter(pk=job_id, lease_token=token).update(heartbeat_at=timezone.now()):
        return None
    return Job.objects.filter(pk=job_id).values_list("status", flat=True).first()


def lease_keeper(job_id: int) -> Callable[[], None]:
    """For a job kind one of whose items can run long (a large file read in one go): a function to
    call now and then while it works. It renews the lease of the execution running the item (at most
    once per JOB_HEARTBEAT_SECONDS), which the engine otherwise renews only between items, so the
    item is not taken for a dead worker's and run twice. Calls from other threads do nothing (they
    would open database connections of their own)."""
    token = Job.objects.filter(pk=job_id).values_list("lease_token", flat=True).first() or ""
    every = settings.JOB_HEARTBEAT_SECONDS
    last = time.monotonic()
    owner = threading.get_ident()

    def keep() -> None:
        nonlocal last
        now = time.monotonic()
        if token and now - last >= every and threading.get_ident() == owner:
            last = now
            lease_heartbeat(job_id, token)

    return keep


def lease_release(job_id: int, token: str, **fields: Any) -> None:
    """Give the lease up (only if `token` still holds it), setting `fields` on the job with it."""
    Job.objects.filter(pk=job_id, lease_token=token).update(lease_token="", **fields)


def release_items(item_ids: list[int]) -> None:
    """Running items back to pending; the attempt did not happen as far as the item is concerned."""
    JobItem.objects.filter(pk__in=item_ids, status=ItemStatus.RUNNING).update(
        status=ItemStatus.PENDING, attempts=F("attempts") - 1
    )
