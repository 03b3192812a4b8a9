"""The Celery task that runs a job (thin: it takes an id and calls the engine) and the only place
that sends its messages. Its name, `pipelines.run_job`, is what config/celery.py routes and what
messages already queued carry: it stays the same wherever this module lives."""
import logging

from celery import shared_task
from django.utils import timezone

from ..models import Job
from .engine import job_execute, slice_seconds
from .kinds import get_handler

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="pipelines.run_job", acks_late=True, reject_on_worker_lost=True)
def run_job(self, job_id: int, kind: str | None = None) -> str:
    """Run one slice of a job (see engine.job_execute); a long job hands over to a continuation."""
    outcome = job_execute(job_id=job_id, time_budget=slice_seconds())
    if outcome == "continue":
        job_enqueue(job_id, kind or _kind_of(job_id))
    return outcome


def _kind_of(job_id: int) -> str:
    return Job.objects.values_list("kind", flat=True).get(pk=job_id)


def job_enqueue(job_id: int, kind: str, *, countdown: float | None = None) -> bool:
    """Send the job's message to its kind's queue (call after commit); False if the broker is away."""
    queue = get_handler(kind).queue
    try:
        run_job.apply_async(args=[job_id], kwargs={"kind": kind}, queue=queue, countdown=countdown)
    except Exception:  # broker down: the job stays queued without enqueued_at; the sweeper sends it later
        logger.exception("could not enqueue job %s", job_id)
        return False
    Job.objects.filter(pk=job_id).update(enqueued_at=timezone.now())
    return True
