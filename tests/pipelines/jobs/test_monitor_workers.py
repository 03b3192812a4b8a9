"""The queue monitor tells the truth with either broker: workers write their own heartbeat (the
SQLite broker has no broadcast, so "没有 worker 应答" showed while a worker ran jobs), queue lengths
count waiting messages, and running jobs show how many items are in flight."""
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from config.celery import app as celery_app
from pipelines.jobs import monitor
from pipelines.jobs.services import job_create
from pipelines.models import ItemStatus, Job, JobItem, JobStatus, WorkerHeartbeat
from tests.factories import JobFactory
from tests.pipelines.jobs.scenes import make_scene_dataset
from tests.security.servers import wait_until


def panel(client):
    return client.get(reverse("jobs:monitor_panel"), HTTP_HX_REQUEST="true").content.decode()


def workers_card(client):
    return panel(client).split('id="monitor-workers"')[1].split("<h3>")[0]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_running_worker_shows_on_the_monitor_with_the_job_it_runs(
    llm_simulator, celery_worker_process, client, admin_user
):
    llm_simulator.set_faults(latency_ms=300)
    dataset, samples = make_scene_dataset(name="monitor", per_category=6, categories=3)
    worker = celery_worker_process(WORKER_HEARTBEAT_SECONDS="0.2")
    client.force_login(admin_user)
    wait_until(lambda: WorkerHeartbeat.objects.exists(), timeout=30, what="the worker's first heartbeat")
    html = panel(client)
    assert "没有 worker 应答" not in html and "没有 worker 在运行" not in html
    assert workers_card(client).count("test-") == 1  # the worker's name
    # Idle once it has drained whatever earlier tests left in this run's broker.
    wait_until(lambda: "空闲" in workers_card(client), timeout=60, what="the worker to show as idle")

    job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 1, "concurrency": 2})

    def running_job_ids():
        return {task.get("job_id") for beat in WorkerHeartbeat.objects.all() for task in beat.active}

    wait_until(lambda: job.pk in running_job_ids(), timeout=60, what="the worker's heartbeat to name its job")
    assert f"/jobs/{job.pk}/" in workers_card(client)
    wait_until(lambda: JobItem.objects.filter(job=job, status=ItemStatus.RUNNING).exists(), timeout=60,
               what="items in flight")
    assert "处理中" in panel(client)

    # A worker that shuts down (idle, so its warm shutdown is quick) says so: its row goes.
    wait_until(lambda: Job.objects.filter(pk=job.pk, status=JobStatus.DONE).exists(), timeout=120,
               what="the job to finish")
    wait_until(lambda: "空闲" in workers_card(client), timeout=60, what="the worker to be idle again")
    worker.stop()
    wait_until(lambda: not WorkerHeartbeat.objects.exists(), timeout=30, what="the stopped worker's row to go")
    assert "没有 worker 在运行" in panel(client)


@pytest.mark.django_db
def test_a_worker_whose_heartbeat_stopped_is_shown_as_lost(client, admin_user, settings):
    settings.WORKER_HEARTBEAT_SECONDS = 5
    now = timezone.now()
    WorkerHeartbeat.objects.create(name="alive@gpu1", hostname="gpu1", pid=10, queues=["classification"],
                                   concurrency=2, started_at=now, last_seen=now)
    WorkerHeartbeat.objects.create(name="gone@gpu2", hostname="gpu2", pid=11, queues=["generation"],
                                   concurrency=2, started_at=now - timedelta(hours=1),
                                   last_seen=now - timedelta(minutes=2))
    workers = {w.name: w for w in monitor.workers()}
    assert workers["alive@gpu1"].online and not workers["gone@gpu2"].online
    client.force_login(admin_user)
    html = panel(client)
    assert "alive@gpu1" in html and "gone@gpu2" in html and "失联" in html


@pytest.mark.django_db
def test_running_executions_show_the_items_in_flight_per_job():
    job = JobFactory(status=JobStatus.RUNNING, lease_token="host-a:123:1:x", heartbeat_at=timezone.now(),
                     items_total=5)
    for n, status in enumerate([ItemStatus.RUNNING, ItemStatus.RUNNING, ItemStatus.PENDING, ItemStatus.DONE,
                                ItemStatus.DONE]):
        JobItem.objects.create(job=job, key=f"k{n}", status=status)
    [row] = monitor.running_executions()
    assert row["in_flight"] == 2 and row["pending"] == 1


@pytest.mark.django_db
def test_queue_lengths_count_a_waiting_message_on_this_broker():
    """With whichever broker this run uses (SQLite by default, Redis when REDIS_URL is set)."""
    queue = "extraction"
    before = {q.name: q.length for q in monitor.queue_lengths()[0]}[queue]
    with celery_app.connection_for_write() as conn:
        celery_app.send_task("pipelines.noop-for-the-monitor-test", queue=queue, connection=conn)
    try:
        after = {q.name: q.length for q in monitor.queue_lengths()[0]}[queue]
        assert after == before + 1
    finally:
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
