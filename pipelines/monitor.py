"""What the staff-only queue monitor shows: queue lengths, workers and their active tasks, running
executions, recent jobs and failed tasks. Every broker call has a short timeout so the page stays
quick when the broker or the workers are away."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from config.celery import JOB_QUEUES
from config.celery import app as celery_app

from .models import Job, JobStatus

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
    active: list[dict[str, Any]] = field(default_factory=list)


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


def workers_online() -> tuple[list[WorkerInfo], str]:
    """Workers answering a broadcast, with their active tasks; an explanation when none can answer."""
    try:
        inspector = celery_app.control.inspect(timeout=INSPECT_TIMEOUT)
        active = inspector.active() or {}
    except Exception as exc:  # noqa: BLE001 - e.g. the SQLAlchemy broker has no broadcast
        return [], f"无法查询 worker（{type(exc).__name__}）；下方“正在执行”来自数据库心跳。"
    workers = []
    for name, tasks in sorted(active.items()):
        workers.append(WorkerInfo(name, [
            {"id": t.get("id"), "name": t.get("name"), "args": t.get("args"), "kwargs": t.get("kwargs"),
             "started": t.get("time_start")} for t in tasks or []
        ]))
    note = "" if workers else "没有 worker 应答（未启动，或 broker 不支持广播）。"
    return workers, note


def running_executions() -> list[dict[str, Any]]:
    """Jobs whose lease is held, with the holder (host:pid) and the age of its heartbeat."""
    now = timezone.now()
    rows = []
    for job in Job.objects.filter(status__in=[JobStatus.RUNNING, JobStatus.CANCELLING]).exclude(lease_token="") \
            .only("id", "kind", "status", "lease_token", "heartbeat_at", "items_total", "items_done", "items_failed"):
        host, pid = (job.lease_token.split(":") + ["", ""])[:2]
        age = (now - job.heartbeat_at).total_seconds() if job.heartbeat_at else None
        rows.append({"job": job, "host": host, "pid": pid, "heartbeat_age": age,
                     "stale": age is None or age > getattr(settings, "JOB_LEASE_SECONDS", 30.0)})
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
