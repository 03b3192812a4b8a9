"""A job whose worker died is picked up again: a dead owner is recognised even as an unreaped zombie
(a SIGKILLed worker's pool child whose parent died too waits for PID 1 to reap it), and a lease that
went stale while workers kept running is re-enqueued by the workers' sweeper, not only at a worker's start."""
import os
import socket
import subprocess
import sys
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from pipelines.jobs import leases, recovery
from pipelines.jobs.tasks import run_job
from pipelines.models import JobStatus
from tests.factories import JobFactory
from tests.security.servers import wait_until

pytestmark = pytest.mark.django_db


def test_a_lease_owner_that_is_a_zombie_is_dead():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # Not reaped (no wait()): it stays a zombie, which kill(pid, 0) still finds.
        wait_until(lambda: open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z",
                   timeout=30, what="the child to exit")
        token = f"{socket.gethostname()}:{child.pid}:1:abc"
        assert leases._owner_dead(token)
    finally:
        child.wait()


def test_a_live_lease_owner_is_alive():
    assert not leases._owner_dead(f"{socket.gethostname()}:{os.getpid()}:1:abc")


def test_a_job_whose_lease_went_stale_is_enqueued_again_by_the_sweeper(settings):
    settings.JOB_LEASE_SECONDS = 30
    long_ago = timezone.now() - timedelta(minutes=5)
    stale = JobFactory(status=JobStatus.RUNNING, lease_token="other-host:123:1:x", heartbeat_at=long_ago,
                       enqueued_at=long_ago)
    JobFactory(status=JobStatus.RUNNING, lease_token="other-host:124:1:y", heartbeat_at=timezone.now(),
               enqueued_at=long_ago)  # alive: left alone
    with mock.patch.object(run_job, "apply_async") as send:
        assert recovery.jobs_recover_stale() == [stale.pk]
        assert send.call_args.kwargs["args"] == [stale.pk]
    stale.refresh_from_db()
    assert stale.enqueued_at > long_ago
    with mock.patch.object(run_job, "apply_async") as send:
        # Sent a moment ago: not again until a lease period has passed without a taker.
        assert recovery.jobs_recover_stale() == []
        send.assert_not_called()
