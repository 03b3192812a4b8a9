"""Fixtures of the DPO tests, registered for the whole suite in tests/conftest.py (pytest_plugins):
accepted feedback as a prompt source, and a finished DPO job (the simulator is `llm_simulator`)."""
import pytest

from pipelines.models import FeedbackSample, ReviewDecision
from tests.pipelines.dpo.data import FRUIT_PROMPTS, SEED_REJECT


@pytest.fixture
def feedback_prompts(db):
    """Accepted feedback samples: the prompts and chosen answers of a DPO job."""
    rows = []
    for number, (prompt, chosen) in enumerate(FRUIT_PROMPTS, start=1):
        rows.append(FeedbackSample.objects.create(
            feedback_id=f"fb-{number:03d}", instruction=prompt, output=chosen, rating=5,
            model_name="qwen-72b-chat", decision=ReviewDecision.ACCEPTED,
        ))
    return rows


@pytest.fixture
def dpo_job(db, admin_user):
    """A finished model-strategy DPO job whose rejects were mostly the seed's boilerplate."""
    from pipelines.dpo.services import job_checks
    from pipelines.models import Job, JobKind, JobStatus, PreferencePair

    job = Job.objects.create(
        kind=JobKind.DPO, created_by=admin_user, status=JobStatus.DONE, items_total=len(FRUIT_PROMPTS),
        items_done=len(FRUIT_PROMPTS),
        params={"source": {"name": "feedback"}, "limit": None, "strategy": {
            "name": "model", "base_url": "http://127.0.0.1:8765/v1", "model": "sft-small", "template": "{prompt}",
            "system": "", "mode": "greedy", "n": 1, "max_tokens": None, "temperature": 0.0, "top_p": None}},
    )
    from pipelines.dpo.checks import check_pair

    for number, (prompt, chosen) in enumerate(FRUIT_PROMPTS, start=1):
        rejected = SEED_REJECT if number <= 6 else chosen[: len(chosen) // 2]
        result = check_pair(prompt, chosen, rejected)
        PreferencePair.objects.create(job=job, key=f"feedback:{number}", source="feedback", prompt=prompt, chosen=chosen,
                                      rejected=rejected, strategy="model", issues=result.issues, metrics=result.metrics)
    job.report = job_checks(job)
    job.save(update_fields=["report"])
    return job
