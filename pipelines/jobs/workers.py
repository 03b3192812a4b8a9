"""What runs in a Celery worker's main process: the signal hooks that recover orphaned jobs when a
worker starts, the sweeper that sends lost messages, and the heartbeats.

Heartbeats: each Celery worker writes its own row (WorkerHeartbeat) from a thread in its main
process, so the queue monitor shows the workers and what they run with any broker — the embedded
SQLite broker answers no broadcast, so `celery inspect` sees nothing there.

Started and stopped by the worker signals below (config/celery.py has every worker import this
module). Every WORKER_HEARTBEAT_SECONDS the row is updated with the tasks the worker is running
(Celery's own active-request set, kept in the main process); a clean shutdown deletes it; a killed
worker's row goes stale and is shown as lost, then deleted by any live worker after
WORKER_FORGET_SECONDS.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import connections
from django.utils import timezone

from .recovery import jobs_enqueue_unsent, jobs_recover_orphaned, jobs_recover_stale

logger = logging.getLogger(__name__)


def heartbeat_seconds() -> float:
    return float(settings.WORKER_HEARTBEAT_SECONDS)


def _active_tasks() -> list[dict[str, Any]]:
    """The requests this worker runs now (main process: Celery's active_requests)."""
    from celery.worker import state

    tasks = []
    for request in list(state.active_requests):
        args = list(getattr(request, "args", None) or [])
        job_id = args[0] if request.name == "pipelines.run_job" and args and isinstance(args[0], int) else None
        since = getattr(request, "time_start", None)
        tasks.append({"task_id": request.id, "task": request.name, "job_id": job_id,
                      "since": datetime.fromtimestamp(since, tz=UTC).isoformat() if since else None})
    return sorted(tasks, key=lambda t: t["since"] or "")


def heartbeat_write(*, name: str, queues: list[str], concurrency: int | None, started_at) -> None:
    from ..models import WorkerHeartbeat

    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(name=name, defaults={
        "hostname": socket.gethostname(), "pid": os.getpid(), "queues": queues, "concurrency": concurrency,
        "active": _active_tasks(), "started_at": started_at, "last_seen": now,
    })
    forget = float(settings.WORKER_FORGET_SECONDS)
    WorkerHeartbeat.objects.filter(last_seen__lt=now - timedelta(seconds=forget)).delete()


def heartbeat_remove(name: str) -> None:
    from ..models import WorkerHeartbeat

    WorkerHeartbeat.objects.filter(name=name).delete()


class HeartbeatThread:
    """One per worker process (its main process); `start` on worker_ready, `stop` on shutdown."""

    _instance: HeartbeatThread | None = None

    def __init__(self, *, name: str, queues: list[str], concurrency: int | None):
        self.name, self.queues, self.concurrency = name, queues, concurrency
        self.started_at = timezone.now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)

    @classmethod
    def start(cls, consumer) -> None:
        if cls._instance is not None or not heartbeat_seconds():
            return
        try:
            queues = sorted(q.name for q in consumer.task_consumer.queues)
        except Exception:  # noqa: BLE001 - the heartbeat must not stop a worker from starting
            queues = []
        concurrency = getattr(getattr(consumer, "controller", None), "concurrency", None)
        cls._instance = cls(name=consumer.hostname, queues=queues, concurrency=concurrency)
        cls._instance._thread.start()

    @classmethod
    def stop(cls) -> None:
        instance, cls._instance = cls._instance, None
        if instance is None:
            return
        instance._stop.set()
        instance._thread.join(timeout=10)
        try:
            heartbeat_remove(instance.name)
        except Exception:  # noqa: BLE001 - the row goes stale and is shown as lost instead
            logger.warning("could not remove the worker heartbeat of %s", instance.name, exc_info=True)
        finally:
            connections.close_all()

    def _run(self) -> None:
        interval = heartbeat_seconds()
        while True:
            try:
                heartbeat_write(name=self.name, queues=self.queues, concurrency=self.concurrency,
                                started_at=self.started_at)
            except Exception:  # noqa: BLE001 - the database may be away for a moment; try again
                logger.warning("worker heartbeat not written", exc_info=True)
            finally:
                # No connection is held between beats: a pool child forked meanwhile would inherit it.
                connections.close_all()
            if self._stop.wait(interval):
                return


# --------------------------------------------------------------------------- worker signals
def _close_connections() -> None:
    connections.close_all()


@worker_ready.connect
def recover_orphaned_jobs(sender=None, **kwargs):
    """A worker (re)started: jobs whose execution died with a previous worker continue; its heartbeat
    starts (the queue monitor's list of workers)."""
    if sender is not None:
        HeartbeatThread.start(sender)
    try:
        jobs_recover_orphaned()
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
                jobs_enqueue_unsent()
                jobs_recover_stale()
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
    HeartbeatThread.stop()
