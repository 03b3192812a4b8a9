"""The job engine: create, run, cancel, resume and retry jobs of any kind (see jobkinds.py).

How a job runs
--------------
`job_create` validates the parameters through the kind's handler, writes one JobItem per key and
enqueues one Celery message after the transaction commits. The task (`pipelines.tasks.run_job`)
calls `job_execute`, which:

1. takes the job's **lease** (Job.lease_token + heartbeat_at) in a locked transaction. A second
   delivery of the same message finds the lease held by a live execution and does nothing, so it
   never doubles the model calls. A lease is stale when its heartbeat is older than
   JOB_LEASE_SECONDS, or at once when its owner was a process on this host that no longer exists
   (a worker child killed with SIGKILL). Taking a stale lease puts the dead execution's claimed
   items back to pending;
2. counts the delivery (Job.deliveries, reset as soon as a delivery stores an item) and gives the
   job up after JOB_MAX_DELIVERIES deliveries in a row that got nothing done (a job that kills its
   worker every time);
3. claims pending items in small batches (`UPDATE … WHERE status='pending'`, so an item is claimed
   once), reads what each needs in this thread (`handler.prepare`), and runs `handler.call` on an
   asyncio loop in a helper thread. It hands the loop half as many items again as `concurrency`;
   the model client's semaphore lets `concurrency` calls run and starts a waiting one the moment
   one finishes, so the slots never wait for this thread, which stores and claims in batches. The
   database is only touched from the calling thread; the loop thread only does network I/O;
4. stores finished items in one transaction per batch (`handler.store`, idempotent) and marks them
   done or failed with a stable reason. Items that were running when a worker died run last, one at
   a time; one already claimed JOB_MAX_DELIVERIES times without an outcome (it crashed the worker
   each time) is failed as `max_deliveries` instead of being claimed again;
5. renews the lease every JOB_HEARTBEAT_SECONDS, refreshes the counters and reads the status, so a
   cancel stops dispatching within about a second (in-flight calls are abandoned and their items go
   back to pending, done items stay done);
6. after a time budget below the Celery soft time limit, starts no more model calls (queued ones
   and retries raise RequestsClosed), stores the calls already sent, puts the rest back to pending
   and re-enqueues a continuation message, so no message outlives the Redis visibility timeout
   however long the job is. On SoftTimeLimitExceeded it puts every unfinished item back at once.

Handlers may also define `prepare_many(job, keys) -> {key: payload or ItemFailed}` and
`store_many(job, [(key, payload, output)]) -> {key: result or ItemFailed}` to read and write a
batch of items in a few queries (the classification kind does); the engine falls back to the
per-item methods when they are absent or raise. An optional `checkpoint(job, state)` is called on a
heartbeat after items were stored (`state`: a dict kept for this execution, empty at its start), so
a kind can show its progress outside the database while it runs (generation grows its files); an
error there is logged, never the job's failure.

`store` may write rows and then raise ItemFailed (e.g. an unparseable answer is still recorded as a
Reasoning row): those writes are kept and the item is failed with that reason. Any other exception
from `store` rolls its writes back and fails the item as `error`.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from core.errors import ApplicationError

from .jobkinds import ItemFailed, JobKindHandler, get_handler
from .llm.client import LLMClient
from .llm.errors import LLMError, RequestsClosed
from .models import ItemStatus, Job, JobItem, JobStatus

logger = logging.getLogger(__name__)

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
MAX_CONCURRENCY = 128
COLLECT_SECONDS = 0.05
RATE_SAVE_SECONDS = 5.0


def error_label(kind: str) -> str:
    """The Chinese label of an item error kind."""
    return ERROR_LABELS.get(kind, kind)


def _scrub(text: str) -> str:
    """Error texts go to pages and reports: make sure the API key can never be among them."""
    key = settings.OPENAI_API_KEY
    text = str(text)
    if key and len(key) >= 6:
        text = text.replace(key, "***")
    return text[:2000]


# --------------------------------------------------------------------------- parameters
def clean_engine_params(params: dict[str, Any]) -> dict[str, Any]:
    """Validate the per-job provider overrides (model, temperature, concurrency …); drop secrets."""
    params = {k: v for k, v in params.items() if "key" not in k.lower() and "secret" not in k.lower()}

    def number(name: str, cast, low, high):
        value = params.get(name)
        if value in (None, ""):
            params.pop(name, None)
            return
        try:
            value = cast(value)
        except (TypeError, ValueError):
            raise ApplicationError(f"参数 {name} 必须是数字") from None
        if not low <= value <= high:
            raise ApplicationError(f"参数 {name} 必须在 {low} 到 {high} 之间")
        params[name] = value

    number("temperature", float, 0.0, 2.0)
    number("top_p", float, 0.0, 1.0)
    number("max_tokens", int, 1, 32768)
    number("concurrency", int, 1, MAX_CONCURRENCY)
    number("requests_per_minute", int, 0, 1_000_000)
    number("timeout", float, 0.1, 3600.0)
    number("max_retries", int, 0, 20)
    if params.get("stream") in (None, ""):
        params.pop("stream", None)
    else:
        params["stream"] = str(params["stream"]).strip().lower() in {"1", "true", "yes", "on"}
    if "model" in params:
        model = str(params["model"] or "").strip()
        if model:
            params["model"] = model[:200]
        else:
            params.pop("model")
    return params


def llm_for_job(params: dict[str, Any], report: dict[str, Any] | None = None) -> LLMClient:
    """The model client for a job: provider settings overridden by the job's parameters.

    A continuation starts at the request rate the previous slice had learned (the job report's
    `engine.rate`), not from scratch.
    """
    learned = (((report or {}).get("engine") or {}).get("rate") or {}).get("current_per_minute")
    return LLMClient(
        model=params.get("model"),
        concurrency=params.get("concurrency"),
        requests_per_minute=params.get("requests_per_minute"),
        timeout=params.get("timeout"),
        max_retries=params.get("max_retries"),
        stream=params.get("stream"),
        start_rate=learned,
    )


# --------------------------------------------------------------------------- dispatch
def job_enqueue(job_id: int, kind: str, *, countdown: float | None = None) -> bool:
    """Send the job's message to its kind's queue (call after commit); False if the broker is away."""
    from .tasks import run_job

    queue = get_handler(kind).queue
    try:
        run_job.apply_async(args=[job_id], kwargs={"kind": kind}, queue=queue, countdown=countdown)
    except Exception:  # broker down: the job stays queued without enqueued_at; the sweeper sends it later
        logger.exception("could not enqueue job %s", job_id)
        return False
    Job.objects.filter(pk=job_id).update(enqueued_at=timezone.now())
    return True


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


def _enqueue_on_commit(job: Job) -> None:
    job_id, kind = job.pk, job.kind
    transaction.on_commit(lambda: job_enqueue(job_id, kind))


# --------------------------------------------------------------------------- services
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
    _refresh_counters(job.pk)
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


# --------------------------------------------------------------------------- progress
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


def _refresh_counters(job_id: int) -> tuple[int, int]:
    counts = dict(JobItem.objects.filter(job_id=job_id).values_list("status").annotate(n=Count("id")))
    done, failed = counts.get(ItemStatus.DONE, 0), counts.get(ItemStatus.FAILED, 0)
    Job.objects.filter(pk=job_id).update(items_done=done, items_failed=failed, items_total=sum(counts.values()))
    return done, failed


# --------------------------------------------------------------------------- the lease
def _new_token() -> str:
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
def _lease_acquire(job_id: int, token: str) -> tuple[str, Job | None]:
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
        _refresh_counters(job.pk)
        return "failed", None
    job.lease_token, job.heartbeat_at, job.status = token, now, JobStatus.RUNNING
    job.started_at = job.started_at or now
    job.save(update_fields=["lease_token", "heartbeat_at", "status", "started_at", "deliveries"])
    return "run", job


def _heartbeat(job_id: int, token: str) -> str | None:
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
            _heartbeat(job_id, token)

    return keep


def _lease_release(job_id: int, token: str, **fields: Any) -> None:
    Job.objects.filter(pk=job_id, lease_token=token).update(lease_token="", **fields)


def _release_items(item_ids: list[int]) -> None:
    """Running items back to pending; the attempt did not happen as far as the item is concerned."""
    JobItem.objects.filter(pk__in=item_ids, status=ItemStatus.RUNNING).update(
        status=ItemStatus.PENDING, attempts=F("attempts") - 1
    )


def _mark_items_done(results: list[tuple[int, Any]], finished_at) -> None:
    """Mark items done with their results: one statement run for every row (executemany).

    Not `bulk_update`: its CASE WHEN expression over every row was the costliest part of storing a
    batch (the engine's thread shares the GIL with the model calls, so that cost was throughput).
    Values go through the fields' own adaptation, as the ORM would do.
    """
    meta = JobItem._meta
    quote = connection.ops.quote_name
    result_field, finished_field = meta.get_field("result"), meta.get_field("finished_at")
    sql = (f"UPDATE {quote(meta.db_table)} SET {quote('status')} = %s, {quote('result')} = %s, "
           f"{quote('error_kind')} = '', {quote('error')} = '', {quote('finished_at')} = %s WHERE {quote('id')} = %s")
    finished = finished_field.get_db_prep_save(finished_at, connection)
    rows = [(ItemStatus.DONE.value, result_field.get_db_prep_save(result, connection), finished, item_id)
            for item_id, result in results]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


# --------------------------------------------------------------------------- execution
class _LoopThread:
    """An asyncio loop in a daemon thread: the model calls run here, the database stays in ours."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="job-llm-loop", daemon=True)
        self.thread.start()

    def submit(self, coro) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self, llm: LLMClient | None) -> None:
        async def shutdown():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if llm is not None:
                await llm.aclose()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=10)
        except Exception:  # noqa: BLE001 - closing must not hide the job's outcome
            logger.warning("job loop did not shut down cleanly", exc_info=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


def slice_seconds() -> float:
    """How long one task runs a job before handing over to a continuation message."""
    soft = settings.CELERY_TASK_SOFT_TIME_LIMIT or 55 * 60
    return max(60.0, soft - settings.LLM_TIMEOUT * 2 - 60)


def job_execute(*, job_id: int, time_budget: float | None = None,
                on_progress: Callable[[JobProgress], None] | None = None) -> str:
    """Run a job's pending items until none is left, the job is cancelled or the budget is spent.

    Returns "done", "failed", "cancelled", "continue" (budget spent; enqueue a continuation),
    "busy" (another execution holds the lease), "finished" (nothing to do), "lost" (the lease was
    taken over) or "missing".
    """
    token = _new_token()
    outcome, job = _lease_acquire(job_id, token)
    if outcome != "run":
        logger.info("job %s: %s", job_id, outcome)
        return outcome
    try:
        handler = get_handler(job.kind)
        return _Execution(job, handler, token, time_budget, on_progress).run()
    except Exception as exc:
        # A bug or a lost database: show it on the job (resume is possible) and let Celery record it.
        logger.exception("job %s crashed", job_id)
        try:
            JobItem.objects.filter(job_id=job_id, status=ItemStatus.RUNNING).update(status=ItemStatus.PENDING)
            _refresh_counters(job_id)
            _lease_release(job_id, token, status=JobStatus.FAILED, finished_at=timezone.now(),
                           error_summary=_scrub(f"任务中断（程序错误）：{type(exc).__name__}: {exc}"))
        except Exception:  # noqa: BLE001 - the database itself may be what failed
            logger.exception("job %s: could not record the crash", job_id)
        raise
    finally:
        _lease_release(job_id, token)


class _Execution:
    def __init__(self, job: Job, handler: JobKindHandler, token: str, time_budget: float | None,
                 on_progress: Callable[[JobProgress], None] | None):
        self.job = job
        self.handler = handler
        self.token = token
        self.params = dict(job.params)
        self.concurrency = int(self.params.get("concurrency") or settings.LLM_CONCURRENCY)
        self.deadline = time.monotonic() + time_budget if time_budget else None
        self.on_progress = on_progress
        self.heartbeat_every = settings.JOB_HEARTBEAT_SECONDS
        self.max_attempts = settings.JOB_MAX_DELIVERIES
        self.llm = llm_for_job(self.params, job.report) if handler.uses_llm else None
        # With a model client, more items than `concurrency` are handed to the loop: the client's
        # semaphore holds the extra ones back, and each starts the moment a call finishes, without
        # waiting for this thread to store results and claim more (which it then does in batches).
        # Kinds without one (file imports) have no such gate: exactly `concurrency` in flight.
        self.in_flight_target = self.concurrency + (self.concurrency // 2 if self.llm is not None else 0)
        self.claim_batch = max(1, self.concurrency // 4)
        self.in_flight: dict[concurrent.futures.Future, tuple[int, str, Any]] = {}
        self.progressed = False
        self.checkpoint_state: dict[str, Any] = {}
        self.stored_since_checkpoint = False
        # Fail fast on configuration errors: the same config_error N times in a row stops the job.
        self.config_limit = settings.JOB_CONFIG_ERROR_LIMIT
        self.config_streak: tuple[str, int] = ("", 0)
        self.config_stop: str | None = None
        self.rate_saved_at = time.monotonic()  # the first save after RATE_SAVE_SECONDS, not before any call

    # -- the loop
    def run(self) -> str:
        loop = _LoopThread()
        stop: str | None = None
        try:
            last_beat = 0.0
            exhausted = False
            while True:
                now = time.monotonic()
                if now - last_beat >= self.heartbeat_every:
                    last_beat = now
                    status = _heartbeat(self.job.pk, self.token)
                    if status is None:
                        stop = "lost"
                    elif status == JobStatus.CANCELLING:
                        stop = "cancel"
                    self._report_progress()
                    if now - self.rate_saved_at >= RATE_SAVE_SECONDS:
                        self.rate_saved_at = now
                        self._save_rate()
                if stop is None and self.config_stop:
                    stop = "config"
                if stop is None and self.deadline and now >= self.deadline:
                    stop = "budget"
                    if self.llm is not None:
                        # Calls already sent finish and are stored; queued ones and retries don't start
                        # (their items go back to pending), so the slice ends within one call's time.
                        self.llm.close_to_new_requests()
                if stop in ("lost", "cancel", "config"):
                    break
                free = self.in_flight_target - len(self.in_flight)
                if stop is None and not exhausted and (free >= self.claim_batch or len(self.in_flight) < self.concurrency):
                    claimed = self._claim(free)
                    if not claimed:
                        exhausted = True
                    self._dispatch(loop, claimed)
                if not self.in_flight:
                    if exhausted or stop:
                        break
                    continue
                done, _ = concurrent.futures.wait(
                    list(self.in_flight), timeout=min(self.heartbeat_every, 0.5),
                    return_when=concurrent.futures.FIRST_COMPLETED,
                )
                if done and len(self.in_flight) - len(done) > self.concurrency:
                    # Queued calls keep every slot busy meanwhile: collect a few more finished items so
                    # that storing and claiming happen in batches, not once per item.
                    done, _ = concurrent.futures.wait(list(self.in_flight), timeout=COLLECT_SECONDS,
                                                      return_when=concurrent.futures.ALL_COMPLETED)
                if done:
                    # Forgotten only once stored: if the soft time limit strikes inside _store (its
                    # transaction rolls back), they are still in flight and get stored on the way out.
                    self._store([(self.in_flight[f], f) for f in done])
                    for future in done:
                        del self.in_flight[future]
                    exhausted = False  # finished items free slots; look for more work
        except SoftTimeLimitExceeded:
            stop = "budget"
        finally:
            self._abandon_in_flight(release=stop != "lost")
            loop.close(self.llm)
        self._save_llm_stats()
        if stop == "lost":
            return "lost"
        if stop == "config":
            # Every further item would fail the same way: stop with one message; the items not
            # yet run stay pending, so "继续" runs them once the configuration is fixed.
            _refresh_counters(self.job.pk)
            _lease_release(self.job.pk, self.token, status=JobStatus.FAILED, finished_at=timezone.now(),
                           error_summary=_scrub(self.config_stop))
            return "failed"
        if stop == "cancel":
            _refresh_counters(self.job.pk)
            _lease_release(self.job.pk, self.token, status=JobStatus.CANCELLED, finished_at=timezone.now())
            return "cancelled"
        if stop == "budget":
            _refresh_counters(self.job.pk)
            # Queued again until the continuation message is sent (the sweeper resends it if it can't be).
            _lease_release(self.job.pk, self.token, deliveries=0, status=JobStatus.QUEUED, enqueued_at=None)
            return "continue"
        return self._finalize()

    # -- claiming and dispatching
    def _claim(self, n: int) -> list[tuple[int, str]]:
        """Up to `n` pending items marked running, as (id, key); [] when none is left to run now."""
        pending = JobItem.objects.filter(job_id=self.job.pk, status=ItemStatus.PENDING)
        ids = list(pending.filter(attempts=0).order_by("id").values_list("id", flat=True)[:n])
        if not ids:
            # Items that were running when a worker died go last and one at a time with nothing else
            # in flight, so an item that kills its worker takes no innocent items down with it.
            if self.in_flight:
                return []
            # One already claimed JOB_MAX_DELIVERIES times without an outcome (it crashed the worker
            # each time) is given up straight from pending: it is never marked running again.
            pending.filter(attempts__gte=self.max_attempts).update(
                status=ItemStatus.FAILED, error_kind="max_deliveries", result=None, finished_at=timezone.now(),
                error=f"该条目已被领取 {self.max_attempts} 次仍未完成（可能导致了进程崩溃）",
            )
            ids = list(pending.order_by("id").values_list("id", flat=True)[:1])
        if not ids:
            return []
        claimed_at = timezone.now()
        JobItem.objects.filter(pk__in=ids, status=ItemStatus.PENDING).update(
            status=ItemStatus.RUNNING, attempts=F("attempts") + 1, started_at=claimed_at
        )
        return list(
            JobItem.objects.filter(pk__in=ids, status=ItemStatus.RUNNING, started_at=claimed_at)
            .order_by("id").values_list("id", "key")
        )

    def _dispatch(self, loop: _LoopThread, claimed: list[tuple[int, str]]) -> None:
        prepare_many = getattr(self.handler, "prepare_many", None)
        payloads: dict[str, Any] = {}
        if prepare_many is not None and len(claimed) > 1:
            try:
                payloads = prepare_many(self.job, [key for _, key in claimed])
            except SoftTimeLimitExceeded:
                raise  # the slice is over: never an item's failure
            except Exception:  # noqa: BLE001 - fall back to one item at a time
                logger.exception("job %s: prepare_many failed; preparing items one by one", self.job.pk)
                payloads = {}
        for item_id, key in claimed:
            try:
                payload = payloads[key] if key in payloads else self.handler.prepare(self.job, key)
                if isinstance(payload, ItemFailed):
                    raise payload
            except ItemFailed as exc:
                self._fail(item_id, exc.kind, exc.message)
                continue
            except SoftTimeLimitExceeded:
                raise  # the slice is over: never an item's failure
            except Exception as exc:  # noqa: BLE001 - one bad item never stops the job
                logger.exception("job %s item %s: prepare failed", self.job.pk, key)
                self._fail(item_id, "error", f"{type(exc).__name__}: {exc}")
                continue
            future = loop.submit(self.handler.call(self.llm, payload, self.params))
            self.in_flight[future] = (item_id, key, payload)

    def _abandon_in_flight(self, *, release: bool) -> None:
        if not self.in_flight:
            return
        if release:
            # Calls that already came back are stored rather than thrown away.
            finished = [f for f in self.in_flight if f.done() and not f.cancelled()]
            if finished:
                self._store([(self.in_flight.pop(f), f) for f in finished])
        ids = [item_id for item_id, _, _ in self.in_flight.values()]
        for future in self.in_flight:
            future.cancel()
        self.in_flight.clear()
        if release:
            _release_items(ids)

    # -- outcomes
    def _fail(self, item_id: int, kind: str, message: str) -> None:
        JobItem.objects.filter(pk=item_id).exclude(status=ItemStatus.DONE).update(
            status=ItemStatus.FAILED, error_kind=kind[:64], error=_scrub(message), result=None,
            finished_at=timezone.now(),
        )
        if kind != "config_error":
            return
        signature, count = self.config_streak
        count = count + 1 if message == signature else 1
        self.config_streak = (message, count)
        if count >= self.config_limit and not self.config_stop:
            self.config_stop = (f"已停止：连续 {count} 个条目因相同的配置错误失败，其余条目未运行。{message}。"
                                "请检查模型名称、API 密钥和参数（例如评判模型的 temperature），修正后点“继续”。")
            logger.warning("job %s stopped on a configuration error: %s", self.job.pk, message)

    def _store(self, finished: list[tuple[tuple[int, str, Any], concurrent.futures.Future]]) -> None:
        self.stored_since_checkpoint = True
        with transaction.atomic():
            successes: list[tuple[int, str, Any, Any]] = []
            not_started: list[int] = []
            for (item_id, key, payload), future in finished:
                try:
                    successes.append((item_id, key, payload, future.result()))
                except ItemFailed as exc:
                    self._fail(item_id, exc.kind, exc.message)
                except LLMError as exc:
                    self._fail(item_id, exc.kind, exc.message)
                except (concurrent.futures.CancelledError, RequestsClosed):
                    not_started.append(item_id)
                except Exception as exc:  # noqa: BLE001
                    logger.exception("job %s item %s: call failed", self.job.pk, key)
                    self._fail(item_id, "error", f"{type(exc).__name__}: {exc}")
            outcomes = self._store_many(successes) if successes else {}
            done = []
            now = timezone.now()
            for item_id, key, payload, output in successes:
                outcome = outcomes[item_id] if item_id in outcomes else self._store_one(key, payload, output)
                if isinstance(outcome, ItemFailed):
                    self._fail(item_id, outcome.kind, outcome.message)
                else:
                    done.append((item_id, outcome))
            if not_started:
                _release_items(not_started)
            if done:
                self.config_streak = ("", 0)  # an answer in between: not a configuration error
                _mark_items_done(done, now)
                if not self.progressed:
                    # This delivery got work done: it is no poison job, whatever happened before.
                    self.progressed = True
                    Job.objects.filter(pk=self.job.pk).update(deliveries=0)

    def _store_many(self, successes: list[tuple[int, str, Any, Any]]) -> dict[int, Any]:
        """Results by item id from the handler's optional batch `store_many` ({} when it has none)."""
        store_many = getattr(self.handler, "store_many", None)
        if store_many is None or len(successes) < 2:
            return {}
        savepoint = transaction.savepoint()
        try:
            by_key = store_many(self.job, [(key, payload, output) for _, key, payload, output in successes])
        except SoftTimeLimitExceeded:
            raise  # the slice is over: never an item's failure
        except Exception:  # noqa: BLE001 - fall back to storing one by one
            transaction.savepoint_rollback(savepoint)
            logger.exception("job %s: store_many failed; storing items one by one", self.job.pk)
            return {}
        transaction.savepoint_commit(savepoint)
        return {item_id: by_key[key] for item_id, key, _, _ in successes if key in by_key}

    def _store_one(self, key: str, payload: Any, output: Any) -> Any:
        """The item's result, or the ItemFailed it ended with (store's writes kept for ItemFailed)."""
        savepoint = transaction.savepoint()
        try:
            result = self.handler.store(self.job, key, payload, output)
        except ItemFailed as exc:
            transaction.savepoint_commit(savepoint)  # what store wrote is kept
            return exc
        except SoftTimeLimitExceeded:
            raise  # the slice is over: never an item's failure
        except Exception as exc:  # noqa: BLE001
            transaction.savepoint_rollback(savepoint)
            logger.exception("job %s item %s: store failed", self.job.pk, key)
            return ItemFailed("error", f"{type(exc).__name__}: {exc}")
        transaction.savepoint_commit(savepoint)
        return result

    def _report_progress(self) -> None:
        _refresh_counters(self.job.pk)
        self._checkpoint()
        if self.on_progress is not None:
            self.job.refresh_from_db(fields=["status", "started_at", "finished_at"])
            self.on_progress(job_progress(self.job))

    def _checkpoint(self) -> None:
        checkpoint = getattr(self.handler, "checkpoint", None)
        if checkpoint is None or not self.stored_since_checkpoint:
            return
        self.stored_since_checkpoint = False
        try:
            checkpoint(self.job, self.checkpoint_state)
        except SoftTimeLimitExceeded:
            raise  # the slice is over
        except Exception:  # noqa: BLE001 - a progress file must never fail the job
            logger.exception("job %s: checkpoint failed", self.job.pk)

    def _save_rate(self) -> None:
        """The model client's current request rate into the report, for the job page."""
        if self.llm is None:
            return
        snapshot = self.llm.rate_snapshot()
        with transaction.atomic():
            job = Job.objects.select_for_update().only("report").get(pk=self.job.pk)
            report = dict(job.report or {})
            engine = dict(report.get("engine") or {})
            if engine.get("rate") == snapshot:
                return
            engine["rate"] = snapshot
            report["engine"] = engine
            Job.objects.filter(pk=self.job.pk).update(report=report)

    def _save_llm_stats(self) -> None:
        if self.llm is None:
            return
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=self.job.pk)
            report = dict(job.report or {})
            engine = dict(report.get("engine") or {})
            previous = engine.get("llm") or {}
            current = self.llm.stats.as_dict()
            errors = dict(previous.get("errors") or {})
            for kind, n in current["errors"].items():
                errors[kind] = errors.get(kind, 0) + n
            engine["llm"] = {
                "requests": previous.get("requests", 0) + current["requests"],
                "succeeded": previous.get("succeeded", 0) + current["succeeded"],
                "retries": previous.get("retries", 0) + current["retries"],
                "errors": errors,
                "n_fallbacks": previous.get("n_fallbacks", 0) + current["n_fallbacks"],
            }
            engine["rate"] = self.llm.rate_snapshot()
            report["engine"] = engine
            job.report = report
            job.save(update_fields=["report"])

    def _finalize(self) -> str:
        done, failed = _refresh_counters(self.job.pk)
        job = Job.objects.get(pk=self.job.pk)
        errors = dict(
            JobItem.objects.filter(job=job, status=ItemStatus.FAILED).values_list("error_kind").annotate(n=Count("id"))
        )
        summary_parts = [f"{error_label(kind)}×{n}" for kind, n in sorted(errors.items(), key=lambda kv: -kv[1])]
        try:
            kind_report = self.handler.finalize(job) or {}
        except Exception as exc:  # noqa: BLE001 - the items are stored; a report bug must not lose that
            logger.exception("job %s: finalize failed", job.pk)
            kind_report = {}
            summary_parts.append(f"生成报告失败：{type(exc).__name__}: {exc}")
        now = timezone.now()
        started = job.started_at or now
        seconds = max((now - started).total_seconds(), 1e-6)
        engine = dict((job.report or {}).get("engine") or {})
        engine.update({
            "items_total": done + failed,
            "items_done": done,
            "items_failed": failed,
            "errors_by_kind": errors,
            "duration_seconds": round(seconds, 2),
            "items_per_second": round((done + failed) / seconds, 2),
        })
        report = {**kind_report, "engine": engine}
        status = JobStatus.FAILED if failed and not done else JobStatus.DONE
        summary = (f"{failed} 个条目失败：" + "，".join(summary_parts)) if failed else "，".join(summary_parts)
        Job.objects.filter(pk=job.pk, lease_token=self.token).update(
            status=status, finished_at=now, report=report, error_summary=_scrub(summary), lease_token=""
        )
        return str(status)


# --------------------------------------------------------------------------- recovery
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
