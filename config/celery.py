"""The Celery application. Settings come from Django settings, prefixed CELERY_.

Job messages are routed to one queue per kind of work (the handler's `queue`), so long
classification runs never starve short jobs: default, classification, generation, extraction, dpo.
Run a worker for all of them with `celery -A config worker -Q default,classification,generation,extraction,dpo`.
"""
import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

JOB_QUEUES = ("default", "classification", "generation", "extraction", "dpo")

app = Celery("datafix")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name, routing_key=name) for name in JOB_QUEUES]


def route_task(name, args, kwargs, options, task=None, **kw):
    """Send `pipelines.run_job` to the queue of the job's kind (given as the `kind` keyword)."""
    if name == "pipelines.run_job" and (kwargs or {}).get("kind"):
        from pipelines.jobs.kinds import get_handler

        try:
            queue = get_handler(kwargs["kind"]).queue
        except LookupError:
            return None
        return {"queue": queue if queue in JOB_QUEUES else "default"}
    return None


app.conf.task_routes = (route_task,)
# Every worker imports the job task (pipelines/jobs/tasks.py, not an app's `tasks` module, so
# autodiscovery alone would miss it) and the worker's signal hooks: recovery of orphaned jobs, the
# sweeper and the heartbeats (pipelines/jobs/workers.py).
app.conf.imports = ("pipelines.jobs.tasks", "pipelines.jobs.workers")
app.autodiscover_tasks()
