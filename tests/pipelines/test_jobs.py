"""The job engine against the simulator over real HTTP: counts, faults, cancel, resume, retry."""
import pytest

from pipelines.jobs import job_create, job_progress, run_job_inline
from pipelines.models import ItemStatus, JobStatus
from review.models import Reasoning
from tests.pipelines.conftest_jobs import scene_dataset  # noqa: F401


@pytest.mark.django_db
def test_classification_job_happy_path(llm_simulator, scene_dataset, admin_user):
    dataset, samples = scene_dataset
    job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 2}, user=admin_user)
    assert job.items_total == len(samples)
    job = run_job_inline(job)
    assert job.status == JobStatus.DONE
    assert job.items_done + job.items_failed == len(samples)
    assert Reasoning.objects.filter(mode=2).count() == len(samples)
    assert all(n == 1 for n in llm_simulator.answered_counts().values())
    assert len(llm_simulator.answered_counts()) == len(samples)
    progress = job_progress(job)
    assert progress.total == len(samples) and progress.pending == 0
    print(job.report)
