"""Celery tasks: thin wrappers around the job engine (pipelines/jobs.py), plus the worker hooks
that keep jobs moving when a broker or a worker went away."""
import logging
import threading

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

from . import jobs, workers

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="pipelines.run_job", acks_late=True, reject_on_worker_lost=True)
def run_job(self, job_id: int, kind: str | None = None) -> str:
    """Run one slice of a job (see jobs.job_execute); a long job hands over to a continuation."""
    outcome = jobs.job_execute(job_id=job_id, time_budget=jobs.slice_seconds())
    if outcome == "continue":
        jobs.job_enqueue(job_id, kind or _kind_of(job_id))
    return outcome


def _kind_of(job_id: int) -> str:
    from .models import Job

    return Job.objects.values_list("kind", flat=True).get(pk=job_id)


def _close_connections() -> None:
    from django.db import connections

    connections.close_all()


@worker_ready.connect
def recover_orphaned_jobs(sender=None, **kwargs):
    """A worker (re)started: jobs whose execution died with a previous worker continue; its heartbeat
    starts (the queue monitor's list of workers, pipelines/workers.py)."""
    if sender is not None:
        workers.HeartbeatThread.start(sender)
    try:
        jobs.jobs_recover_orphaned()
    except Exception:  # noqa: BLE001 - a worker must start even if the database is briefly away
        logger.exception("could not look for orphaned jobs")
    finally:
        _close_connections()
    _Sweeper.start()


class _Sweeper:
    """A thread in the worker's main process that sends the messages of jobs whose enqueue failed
    (the broker was down when they were created) once the broker is back, and again those of running
    jobs whose execution died without anyone noticing (a stale lease)."""

    _stop = threading.Event()
    _thread: threading.Thread | None = None

    @classmethod
    def start(cls) -> None:
        interval = settings.JOB_SWEEP_SECONDS
        if cls._thread is not None or not interval:
            return
        cls._stop.clear()
        cls._thread = threading.Thread(target=cls._run, args=(interval,), name="job-sweeper", daemon=True)
        cls._thread.start()

    @classmethod
    def _run(cls, interval: float) -> None:
        while not cls._stop.wait(interval):
            try:
                jobs.jobs_enqueue_unsent()
                jobs.jobs_recover_stale()
            except Exception:  # noqa: BLE001 - try again next round
                logger.warning("job sweeper: could not send queued jobs", exc_info=True)
            finally:
                _close_connections()

    @classmethod
    def stop(cls) -> None:
        cls._stop.set()


@worker_shutdown.connect
def stop_sweeper(**kwargs):
    _Sweeper.stop()
    workers.HeartbeatThread.stop()
