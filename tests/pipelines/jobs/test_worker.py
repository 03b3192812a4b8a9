"""The job engine with a real Celery worker process (no eager mode): kill -9 and duplicates."""
import time

import pytest
from django.db.models import Count

from config.celery import app as celery_app
from pipelines.jobs.services import job_create
from pipelines.models import ItemStatus, Job, JobItem, JobStatus
from review.models import Reasoning
from tests.pipelines.jobs.scenes import make_scene_dataset
from tests.security.servers import scaled

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_until(condition, *, timeout: float, message: str, interval: float = 0.1):
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds."""
    timeout = scaled(timeout)  # stretched on a loaded machine
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for: {message}")


def finished_items(job_id: int) -> int:
    return JobItem.objects.filter(job_id=job_id, status__in=[ItemStatus.DONE, ItemStatus.FAILED]).count()


def assert_one_result_per_item(job: Job, samples):
    items = JobItem.objects.filter(job=job)
    assert items.count() == len(samples)
    assert not items.exclude(status__in=[ItemStatus.DONE, ItemStatus.FAILED]).exists()
    per_sample = dict(
        Reasoning.objects.filter(sample__in=samples, mode=job.params["mode"])
        .values_list("sample_id").annotate(n=Count("id"))
    )
    assert set(per_sample) == {s.pk for s in samples}, "a sample has no reasoning"
    assert set(per_sample.values()) == {1}


def test_worker_killed_with_sigkill_mid_job_loses_nothing(llm_simulator, celery_worker_process):
    llm_simulator.set_faults(latency_ms=150)
    dataset, samples = make_scene_dataset(name="kill", per_category=8, categories=5)
    worker = celery_worker_process()
    job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 2, "concurrency": 2})

    wait_until(lambda: finished_items(job.pk) >= 6, timeout=60, message="the worker to finish a few items")
    worker.kill()
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert finished_items(job.pk) < len(samples), "the job finished before the kill; make it longer"

    celery_worker_process()  # a restarted worker picks the orphaned job up on its own
    wait_until(lambda: Job.objects.filter(pk=job.pk, status=JobStatus.DONE).exists(), timeout=120,
               message="the job to complete after the restart")
    job.refresh_from_db()
    assert_one_result_per_item(job, samples)
    assert job.items_done + job.items_failed == len(samples)


def test_the_same_message_delivered_twice_does_not_double_model_calls(llm_simulator, celery_worker_process):
    llm_simulator.set_faults(latency_ms=50)
    dataset, samples = make_scene_dataset(name="dup", per_category=6, categories=4)
    celery_worker_process()
    celery_worker_process()
    job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 3, "concurrency": 4})
    # A second copy of the job's message (as Redis would redeliver after a visibility timeout).
    celery_app.send_task("pipelines.run_job", args=[job.pk], kwargs={"kind": "classification"},
                         queue="classification")
    wait_until(lambda: Job.objects.filter(pk=job.pk, status=JobStatus.DONE).exists(), timeout=120,
               message="the job to complete")
    job.refresh_from_db()
    assert_one_result_per_item(job, samples)
    answered = llm_simulator.answered_counts()
    assert len(answered) == len(samples)
    assert set(answered.values()) == {1}, "an item was sent to the model twice"


def test_run_classification_wait_follows_the_job_on_a_real_worker(llm_simulator, celery_worker_process, capsys):
    from django.core.management import call_command

    dataset, samples = make_scene_dataset(name="cli", per_category=2, categories=3)
    celery_worker_process()
    call_command("run_classification", "--dataset", dataset.name, "--mode", "1", "--wait", "--timeout", "120")
    out = capsys.readouterr()
    job = Job.objects.get(kind="classification", params__dataset=dataset.name)
    assert job.status == JobStatus.DONE
    assert f"job #{job.pk}" in out.out and "完成" in out.out
    assert "item" in out.err  # the tqdm progress bar
    assert_one_result_per_item(job, samples)
