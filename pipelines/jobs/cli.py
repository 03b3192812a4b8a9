"""What the job-starting management commands of both apps share: start a job through the job
service, optionally follow it with tqdm."""
import time

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from tqdm import tqdm

from core.errors import ApplicationError
from pipelines.models import Job

from .selectors import job_progress
from .services import job_create, run_job_inline


def add_job_arguments(parser):
    parser.add_argument("--model", help="model name (default: LLM_VISION_MODEL)")
    parser.add_argument("--concurrency", type=int, help="model calls in flight (default: LLM_CONCURRENCY)")
    parser.add_argument("--requests-per-minute", type=int, help="rate limit (0 = none)")
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--user", help="username recorded as the job's creator")
    add_run_mode_arguments(parser)


def add_run_mode_arguments(parser):
    """--wait / --inline / --timeout, with one meaning in every job command (tested)."""
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--wait", action="store_true",
                     help="queue the job for the Celery worker and show a progress bar until it ends")
    how.add_argument("--inline", action="store_true", help="run the job in this process (no worker needed)")
    parser.add_argument("--timeout", type=float, help="with --wait: give up waiting after this many seconds")


def engine_params(opts) -> dict:
    params = {"model": opts.get("model"), "concurrency": opts.get("concurrency"),
              "requests_per_minute": opts.get("requests_per_minute"), "temperature": opts.get("temperature"),
              "max_tokens": opts.get("max_tokens")}
    return {k: v for k, v in params.items() if v is not None}


def start_job(command, *, kind: str, params: dict, opts) -> Job:
    user = None
    if opts.get("user"):
        user = get_user_model().objects.filter(username=opts["user"]).first()
        if user is None:
            raise CommandError(f"no such user: {opts['user']}")
    try:
        job = job_create(kind=kind, params=params, user=user, enqueue=not opts.get("inline"))
    except ApplicationError as exc:
        raise CommandError(exc.message) from None
    command.stdout.write(f"job #{job.pk} ({job.get_kind_display()}): {job.items_total} items → /jobs/{job.pk}/")
    if opts.get("inline"):
        with tqdm(total=job.items_total, unit="item", dynamic_ncols=True) as bar:
            def update(progress):
                bar.n = progress.finished
                bar.set_postfix(failed=progress.failed, refresh=False)
                bar.refresh()

            job = run_job_inline(job, on_progress=update)
            update(job_progress(job))
    elif opts.get("wait"):
        job = follow_to_end(job, timeout=opts.get("timeout"), warn=command.stderr.write)
    if not job.is_active:
        command.stdout.write(f"job #{job.pk}: {job.get_status_display()} — done {job.items_done}, "
                             f"failed {job.items_failed}. {job.error_summary}")
    return job


def follow_to_end(job: Job, *, timeout: float | None, warn=None) -> Job:
    """--wait: follow a queued job until it ends; CommandError when `timeout` passes first.
    `warn` (a command's stderr.write) is told at once when no live worker listens on the job's queue."""
    hint = no_worker_hint(job)
    if hint and warn is not None:
        warn(hint)
    job = follow(job, timeout=timeout)
    if job.is_active:
        raise CommandError(f"job #{job.pk} still {job.status} after {timeout:.0f} s "
                           "(is a worker running? `celery -A config worker -Q …`, or use --inline)")
    return job


def no_worker_hint(job: Job) -> str:
    """Why a queued job may not move: no worker has a fresh heartbeat on its queue ("" when one has)."""
    from pipelines.jobs.kinds import get_handler
    from pipelines.jobs.monitor import workers

    queue = get_handler(job.kind).queue
    if any(w.online and (not w.queues or queue in w.queues) for w in workers()):
        return ""
    return (f"没有在线的 worker 监听队列 {queue}：任务会一直排队，直到有 worker 启动"
            "（celery -A config worker -Q …；make run 会启动），或改用 --inline 在本进程运行。")


def follow(job: Job, *, interval: float = 1.0, timeout: float | None = None) -> Job:
    """Show a progress bar until the job ends (a worker must be running) or `timeout` passes."""
    deadline = time.monotonic() + timeout if timeout else None
    with tqdm(total=job.items_total, unit="item", dynamic_ncols=True) as bar:
        while True:
            job.refresh_from_db()
            progress = job_progress(job)
            bar.n = progress.finished
            bar.set_postfix(status=job.status, failed=progress.failed, refresh=False)
            bar.refresh()
            if not job.is_active or (deadline and time.monotonic() > deadline):
                return job
            time.sleep(interval)
