"""What the staff-only queue monitor shows: queue lengths, workers and what they run (from the
heartbeats they write, pipelines/jobs/workers.py), running executions with their items in flight, recent
jobs and failed tasks. Every broker call has a short timeout so the page stays quick when the broker
is away."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from config.celery import JOB_QUEUES
from config.celery import app as celery_app

from ..models import ItemStatus, Job, JobItem, JobStatus

logger = logging.getLogger(__name__)

INSPECT_TIMEOUT = 1.0


@dataclass
class QueueInfo:
    name: str
    length: int | None
    error: str = ""


@dataclass
class WorkerInfo:
    name: str
    hostname: str = ""
    pid: int | None = None
    queues: list[str] = field(default_factory=list)
    concurrency: int | None = None
    active: list[dict[str, Any]] = field(default_factory=list)
    started_at: Any = None
    seen_seconds_ago: float = 0.0
    online: bool = True


def broker_kind() -> str:
    url = celery_app.conf.broker_url or ""
    return "redis" if url.startswith(("redis://", "rediss://")) else url.split("://", 1)[0] or "?"


def queue_lengths() -> tuple[list[QueueInfo], int | None]:
    """Messages waiting per queue, and (Redis) messages delivered but not yet acknowledged."""
    if broker_kind() == "redis":
        try:
            import redis

            client = redis.Redis.from_url(celery_app.conf.broker_url, socket_timeout=INSPECT_TIMEOUT,
                                          socket_connect_timeout=INSPECT_TIMEOUT)
            with client.pipeline() as pipe:
                for name in JOB_QUEUES:
                    pipe.llen(name)
                pipe.hlen("unacked")
                *lengths, unacked = pipe.execute()
            return [QueueInfo(n, length) for n, length in zip(JOB_QUEUES, lengths, strict=True)], unacked
        except Exception as exc:  # noqa: BLE001 - show the error on the page instead of failing it
            return [QueueInfo(n, None, f"Redis 不可用：{type(exc).__name__}") for n in JOB_QUEUES], None
    infos = []
    try:
        with celery_app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=INSPECT_TIMEOUT)
            channel = conn.default_channel
            for name in JOB_QUEUES:
                try:
                    infos.append(QueueInfo(name, channel.queue_declare(queue=name, passive=True).message_count))
                except Exception as exc:  # noqa: BLE001
                    infos.append(QueueInfo(name, None, type(exc).__name__))
    except Exception as exc:  # noqa: BLE001
        return [QueueInfo(n, None, f"broker 不可用：{type(exc).__name__}") for n in JOB_QUEUES], None
    return infos, None


def workers() -> list[WorkerInfo]:
    """Workers from the heartbeats they write themselves (any broker), newest first within each
    state; one silent for 3 heartbeats is shown as lost (killed, or its machine is away)."""
    from ..models import WorkerHeartbeat
    from .workers import heartbeat_seconds

    now = timezone.now()
    lost_after = 3 * heartbeat_seconds() + 2
    infos = []
    for beat in WorkerHeartbeat.objects.all():
        age = (now - beat.last_seen).total_seconds()
        infos.append(WorkerInfo(
            name=beat.name, hostname=beat.hostname, pid=beat.pid, queues=list(beat.queues or []),
            concurrency=beat.concurrency, active=list(beat.active or []), started_at=beat.started_at,
            seen_seconds_ago=max(0.0, age), online=age <= lost_after,
        ))
    return sorted(infos, key=lambda w: (not w.online, w.name))


def running_executions() -> list[dict[str, Any]]:
    """Jobs whose lease is held, with the holder (host:pid), the age of its heartbeat and how many of
    its items are in flight (claimed, their model call under way) and still pending."""
    now = timezone.now()
    jobs = list(Job.objects.filter(status__in=[JobStatus.RUNNING, JobStatus.CANCELLING]).exclude(lease_token="")
                .only("id", "kind", "status", "lease_token", "heartbeat_at", "items_total", "items_done", "items_failed"))
    counts: dict[int, dict[str, int]] = {}
    for job_id, status, n in (JobItem.objects.filter(job__in=jobs, status__in=[ItemStatus.RUNNING, ItemStatus.PENDING])
                              .values_list("job_id", "status").annotate(n=Count("id"))):
        counts.setdefault(job_id, {})[status] = n
    rows = []
    for job in jobs:
        host, pid = (job.lease_token.split(":") + ["", ""])[:2]
        age = (now - job.heartbeat_at).total_seconds() if job.heartbeat_at else None
        rows.append({"job": job, "host": host, "pid": pid, "heartbeat_age": age,
                     "stale": age is None or age > settings.JOB_LEASE_SECONDS,
                     "in_flight": counts.get(job.pk, {}).get(ItemStatus.RUNNING, 0),
                     "pending": counts.get(job.pk, {}).get(ItemStatus.PENDING, 0)})
    return rows


def recent_jobs(limit: int = 20) -> list[Job]:
    return list(Job.objects.select_related("created_by").order_by("-created_at")[:limit])


def failed_jobs(limit: int = 20) -> list[Job]:
    return list(Job.objects.filter(status=JobStatus.FAILED).select_related("created_by").order_by("-finished_at")[:limit])


def failed_tasks(limit: int = 20) -> list[Any]:
    """Celery task results with status FAILURE (django-celery-results)."""
    from django_celery_results.models import TaskResult

    return list(TaskResult.objects.filter(status="FAILURE").order_by("-date_done")
                .only("task_id", "task_name", "task_args", "date_done", "result", "traceback", "worker")[:limit])
