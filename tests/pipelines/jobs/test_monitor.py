"""The staff-only queue monitor."""
import pytest
from django.urls import reverse

from config.celery import app as celery_app
from pipelines.jobs import monitor
from pipelines.models import JobStatus
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def test_monitor_page_and_panel_for_staff(client, admin_user):
    JobFactory(status=JobStatus.FAILED, error_summary="2 个条目失败：超时×2", items_failed=2, items_total=2)
    client.force_login(admin_user)
    page = client.get(reverse("jobs:monitor")).content.decode()
    assert 'hx-get="/jobs/monitor/panel/"' in page
    panel = client.get(reverse("jobs:monitor_panel"), HTTP_HX_REQUEST="true").content.decode()
    for queue in ("default", "classification", "generation", "extraction", "dpo"):
        assert queue in panel
    assert "超时×2" in panel and "重试失败条目" in panel


def test_queue_lengths_count_waiting_messages():
    """Each queue's own count: 1 message waits in the first queue, 2 in the second … (a length shown
    beside the wrong queue, or none counted, fails)."""
    names = ["default", "classification", "generation", "extraction", "dpo"]
    before, _ = monitor.queue_lengths()
    assert [q.name for q in before] == names
    assert all(q.length is not None for q in before), [q.error for q in before]
    try:
        with celery_app.connection_for_write() as conn:
            for n, name in enumerate(names, start=1):
                for _ in range(n):
                    celery_app.send_task("pipelines.noop-for-the-monitor-test", queue=name, connection=conn)
        after, _ = monitor.queue_lengths()
        assert [a.length - b.length for a, b in zip(after, before, strict=True)] == [1, 2, 3, 4, 5]
    finally:
        with celery_app.connection_for_write() as conn:
            for name in names:
                conn.default_channel.queue_purge(name)


def test_running_executions_flag_stale_heartbeats():
    from datetime import timedelta

    from django.utils import timezone

    JobFactory(status=JobStatus.RUNNING, lease_token="host-a:123:1:x", heartbeat_at=timezone.now())
    JobFactory(status=JobStatus.RUNNING, lease_token="host-b:456:1:y", heartbeat_at=timezone.now() - timedelta(minutes=5))
    rows = {row["host"]: row for row in monitor.running_executions()}
    assert rows["host-a"]["stale"] is False and rows["host-b"]["stale"] is True
