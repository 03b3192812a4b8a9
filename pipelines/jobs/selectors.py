"""Reads of jobs: progress (done/failed/pending, items per second, ETA) and the labels of item errors."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from ..models import ItemStatus, Job, JobItem, JobStatus

ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING)

ERROR_LABELS = {
    "content_filter": "内容审核拒绝",
    "timeout": "超时",
    "rate_limited": "限流 (429)",
    "server_error": "服务端错误",
    "bad_request": "请求被拒绝",
    "connection": "连接失败",
    "unparseable": "无法解析",
    "config_error": "配置错误",
    "truncated": "回答被截断",
    "empty": "空回答",
    "max_deliveries": "多次中断后放弃",
    "missing": "数据不存在",
    "error": "程序错误",
    "unknown_classes": "类别对应不到已有类别",
    "invalid": "参数或文件无效",
}


def error_label(kind: str) -> str:
    """The Chinese label of an item error kind."""
    return ERROR_LABELS.get(kind, kind)


@dataclass
class JobProgress:
    total: int
    done: int
    failed: int
    pending: int
    running: int
    items_per_second: float | None
    eta_seconds: float | None

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def percent(self) -> float:
        return 100.0 * self.finished / self.total if self.total else 100.0


RATE_WINDOW_SECONDS = 60


def job_progress(job: Job) -> JobProgress:
    """Done/failed/total from the items, items per second over the last minute, and an ETA."""
    counts = dict(JobItem.objects.filter(job_id=job.pk).values_list("status").annotate(n=Count("id")))
    done, failed = counts.get(ItemStatus.DONE, 0), counts.get(ItemStatus.FAILED, 0)
    pending, running = counts.get(ItemStatus.PENDING, 0), counts.get(ItemStatus.RUNNING, 0)
    total = done + failed + pending + running
    rate = eta = None
    if job.status in (JobStatus.RUNNING, JobStatus.CANCELLING) and job.started_at:
        now = timezone.now()
        window_start = max(job.started_at, now - timedelta(seconds=RATE_WINDOW_SECONDS))
        window = (now - window_start).total_seconds()
        if window >= 1:
            recent = JobItem.objects.filter(job_id=job.pk, finished_at__gte=window_start).count()
            rate = recent / window
            eta = (pending + running) / rate if rate > 0 else None
    elif job.started_at and job.finished_at:
        seconds = (job.finished_at - job.started_at).total_seconds()
        rate = (done + failed) / seconds if seconds > 0 else None
    return JobProgress(total, done, failed, pending, running, rate, eta)
