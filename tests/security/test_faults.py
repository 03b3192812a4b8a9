"""Fault tolerance of jobs with real worker processes: Redis restarts, duplicate deliveries, poison items.

The job engineer's tests/pipelines/jobs/test_worker.py covers a SIGKILLed worker and a duplicate
message picked up by a second worker; these add what a team server meets besides: the broker
restarting mid-job, the same message executed by several workers at the very same moment, and an
item that takes its worker down every time. Redis restarts use a private redis-server on a free
port (the shared one is never touched), so this runs the same with or without REDIS_URL.
"""
import threading
from contextlib import contextmanager

import pytest
from django.db import connection
from django.db.models import Count

from config.celery import app as celery_app
from pipelines.jobs.engine import job_execute
from pipelines.jobs.services import job_create
from pipelines.models import ItemStatus, Job, JobItem, JobStatus
from review.models import Reasoning
from tests.pipelines.jobs.scenes import make_scene_dataset
from tests.security.servers import private_redis, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def job_finished(job_id: int) -> bool:
    return Job.objects.filter(pk=job_id).exclude(
        status__in=[JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING]).exists()


def reasonings_per_sample(samples, mode: int) -> dict[int, int]:
    return dict(Reasoning.objects.filter(sample__in=samples, mode=mode)
                .values_list("sample_id").annotate(n=Count("id")))


# Outcomes of the model's answer itself (the simulator answers a few samples unparseably on
# purpose); anything else (max_deliveries, error, connection …) would be the fault showing through.
ANSWER_FAILURES = {"unparseable", "content_filter"}


def assert_exactly_one_result_per_item(job: Job, samples) -> None:
    job.refresh_from_db()
    items = JobItem.objects.filter(job=job)
    assert items.count() == len(samples)
    unfinished = list(items.exclude(status__in=[ItemStatus.DONE, ItemStatus.FAILED]).values_list("key", "status"))
    assert not unfinished, unfinished
    bad = list(items.filter(status=ItemStatus.FAILED).exclude(error_kind__in=ANSWER_FAILURES)
               .values_list("key", "error_kind", "error"))
    assert not bad, f"items failed because of the fault: {bad}"
    assert reasonings_per_sample(samples, job.params["mode"]) == {s.pk: 1 for s in samples}
    assert job.status == JobStatus.DONE
    assert job.items_done + job.items_failed == len(samples)


@contextmanager
def celery_broker(url: str):
    """Point this process's Celery app (what job_create enqueues with, and what the worker
    fixture hands to workers) at `url` for the duration."""
    old = celery_app.conf.broker_url
    celery_app.pool.force_close_all()
    celery_app.conf.broker_url = url
    celery_app._pool = None
    try:
        yield
    finally:
        celery_app.pool.force_close_all()
        celery_app.conf.broker_url = old
        celery_app._pool = None


# --------------------------------------------------------------------------- Redis restarts


def test_redis_restarted_mid_job_the_job_finishes_with_nothing_lost_or_doubled(
    llm_simulator, celery_worker_process, tmp_path
):
    llm_simulator.set_faults(latency_ms=150)
    dataset, samples = make_scene_dataset(name="redis-restart", per_category=8, categories=5)
    with private_redis(tmp_path / "redis") as redis_server, celery_broker(redis_server.url):
        celery_worker_process()
        job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 2, "concurrency": 2})
        wait_until(lambda: JobItem.objects.filter(job=job, status=ItemStatus.DONE).count() >= 5, timeout=60,
                   what="the first items to finish")
        redis_server.restart()  # SIGTERM, then the same port and data directory
        assert not job_finished(job.pk), "the job ended before Redis restarted; make it longer"
        wait_until(lambda: job_finished(job.pk), timeout=180, what="the job to finish after the Redis restart")
    assert_exactly_one_result_per_item(job, samples)
    answered = llm_simulator.answered_counts()
    assert len(answered) == len(samples) and set(answered.values()) == {1}, "a model call was repeated"


def test_redis_down_when_a_job_is_started_the_job_still_runs_once_it_is_back(
    llm_simulator, celery_worker_process, tmp_path
):
    """Starting a job while the broker is away must not lose it: it runs when Redis returns."""
    dataset, samples = make_scene_dataset(name="redis-down", per_category=2, categories=3)
    with private_redis(tmp_path / "redis") as redis_server, celery_broker(redis_server.url):
        celery_worker_process()
        redis_server.stop()
        job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 1})
        redis_server.start()
        wait_until(lambda: job_finished(job.pk), timeout=45, what="the job queued during the outage to run")
    assert_exactly_one_result_per_item(job, samples)


# --------------------------------------------------------------------------- duplicate deliveries


def test_the_same_job_executed_by_several_workers_at_the_same_moment_calls_the_model_once_per_item(
    llm_simulator,
):
    """Three executions of one job released together (as three workers would take three copies of
    its message): one runs, the others back off; one result and one model call per item."""
    llm_simulator.set_faults(latency_ms=50)
    dataset, samples = make_scene_dataset(name="at-once", per_category=5, categories=4)
    job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 2, "concurrency": 4})
    barrier = threading.Barrier(3)
    outcomes = []

    def execute():
        try:
            barrier.wait(timeout=10)
            outcomes.append(job_execute(job_id=job.pk))
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=execute) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(map(str, outcomes)) == ["busy", "busy", "done"], outcomes
    assert_exactly_one_result_per_item(job, samples)
    answered = llm_simulator.answered_counts()
    assert len(answered) == len(samples) and set(answered.values()) == {1}
    assert llm_simulator.request_count() == len(samples)


def test_duplicate_messages_waiting_in_the_queue_do_not_rerun_a_finished_job(llm_simulator, celery_worker_process):
    llm_simulator.set_faults(latency_ms=20)
    dataset, samples = make_scene_dataset(name="dup-queue", per_category=3, categories=3)
    job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 1})
    for _ in range(3):  # copies queued before any worker runs: all are delivered in a burst
        celery_app.send_task("pipelines.run_job", args=[job.pk], kwargs={"kind": "classification"},
                             queue="classification")
    celery_worker_process()
    celery_worker_process()
    wait_until(lambda: job_finished(job.pk), timeout=120, what="the job to finish")
    assert_exactly_one_result_per_item(job, samples)
    assert llm_simulator.request_count() == len(samples)


# --------------------------------------------------------------------------- poison items


class HoldingProxy:
    """An HTTP proxy in front of the simulator that never answers the requests carrying one image
    (they hang until the test ends) and forwards the rest. The poison item's call is then in
    flight for as long as its worker lives, so the test sees it running however loaded the machine
    is, instead of racing a short model latency."""

    def __init__(self, upstream: str, held_image_url: str):
        import urllib.request
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.released = threading.Event()
        self.held = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if held_image_url.encode() in body:
                    proxy.held += 1
                    proxy.released.wait()
                    return
                request = urllib.request.Request(upstream + self.path.removeprefix("/v1"), data=body, method="POST",
                                                 headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        status, payload = response.status, response.read()
                except urllib.error.HTTPError as exc:
                    status, payload = exc.code, exc.read()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def stop(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def test_an_item_that_kills_its_worker_every_time_is_failed_and_the_rest_of_the_job_completes(
    llm_simulator, celery_worker_process, settings
):
    """Whenever the poison item runs, its worker dies (SIGKILL, as the OOM killer does). After
    JOB_MAX_DELIVERIES tries it is failed; every other item still gets exactly one result."""
    from pipelines.llm.client import image_data_url

    max_deliveries = 2
    llm_simulator.set_faults(latency_ms=50)
    dataset, samples = make_scene_dataset(name="poison", per_category=4, categories=3)
    job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 2, "concurrency": 1})
    poison = JobItem.objects.filter(job=job).order_by("id")[2]
    poison_sample = next(s for s in samples if str(s.pk) == poison.key)
    proxy = HoldingProxy(llm_simulator.base_url, image_data_url(settings.MEDIA_ROOT / poison_sample.image))
    # The worker's model calls go through the proxy and wait as long as it holds them (no timeout
    # ends the poison call before the kill does).
    worker_env = {"JOB_MAX_DELIVERIES": max_deliveries, "OPENAI_BASE_URL": proxy.base_url, "LLM_TIMEOUT": 600}
    kills = 0
    try:
        worker = celery_worker_process(**worker_env)

        def poison_runs_again():
            # A new claim of the poison item (its attempts went up), or the end of the job.
            return job_finished(job.pk) or JobItem.objects.filter(
                pk=poison.pk, status=ItemStatus.RUNNING, attempts__gt=kills).exists()

        while True:
            wait_until(poison_runs_again, timeout=180, what="the poison item to run again (or the job to end)")
            if job_finished(job.pk):
                break
            worker.kill()
            kills += 1
            assert kills <= max_deliveries, "the poison item is retried without end"
            worker = celery_worker_process(**worker_env)
        wait_until(lambda: job_finished(job.pk), timeout=180, what="the job to end")
    finally:
        proxy.stop()

    job.refresh_from_db()
    poison.refresh_from_db()
    assert poison.status == ItemStatus.FAILED and poison.error_kind == "max_deliveries", (poison.status, poison.error)
    assert kills == max_deliveries
    others = [s for s in samples if str(s.pk) != poison.key]
    other_items = JobItem.objects.filter(job=job).exclude(pk=poison.pk)
    given_up = list(other_items.exclude(status=ItemStatus.DONE).exclude(error_kind__in=ANSWER_FAILURES)
                    .values_list("key", "status", "error_kind"))
    assert not given_up, f"items other than the poison one were given up: {given_up}"
    assert reasonings_per_sample(others, 2) == {s.pk: 1 for s in others}
    assert job.items_done + job.items_failed == len(samples)
    assert job.status == JobStatus.DONE, (job.status, job.error_summary)
