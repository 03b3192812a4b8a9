"""Celery tasks: thin wrappers around the job engine (pipelines/jobs.py)."""
import logging

from celery import shared_task
from celery.signals import worker_ready

from . import jobs

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


@worker_ready.connect
def recover_orphaned_jobs(**kwargs):
    """A worker (re)started: jobs whose execution died with a previous worker continue."""
    try:
        jobs.jobs_recover_orphaned()
    except Exception:  # noqa: BLE001 - a worker must start even if the database is briefly away
        logger.exception("could not look for orphaned jobs")
    finally:
        from django.db import connections

        connections.close_all()
