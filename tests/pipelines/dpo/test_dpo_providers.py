"""The DPO job's model calls against real-server behaviour: a server that ignores `n`, another
endpoint shared by all items, best-of-n / beam-style selection of one reject."""
import pytest
from django.urls import reverse

from pipelines.jobs.services import job_create, run_job_inline
from pipelines.models import JobKind, PreferencePair
from tests.pipelines.dpo.data import FRUIT_PROMPTS

pytestmark = pytest.mark.django_db


def run_dpo(simulator, **strategy):
    params = {"source": {"name": "feedback"}, "strategy": {
        "name": "model", "base_url": simulator.base_url, "model": "sft-small", "template": "{prompt}[EOS]",
        **strategy}}
    return run_job_inline(job_create(kind=JobKind.DPO, params=params))


def test_n_ignored_by_the_server_still_gives_n_pairs_per_prompt_and_is_reported(
        llm_simulator, feedback_prompts, staff_client):
    llm_simulator.set_faults(ignore_n=True)
    job = run_dpo(llm_simulator, mode="sampling", temperature=0.9, n=3)
    assert PreferencePair.objects.filter(job=job).count() == 3 * len(FRUIT_PROMPTS)
    assert job.report["n_ignored"]["n"] == 3 and "忽略了 n=3" in job.report["n_ignored"]["message"]
    page = staff_client.get(reverse("dpo:job", args=[job.pk])).content.decode()
    assert "忽略了 n=3" in page


def test_another_endpoint_gets_one_client_for_the_whole_job(llm_simulator, feedback_prompts, settings):
    # The rejects come from a server other than OPENAI_BASE_URL (e.g. the SFT checkpoint on vLLM).
    llm_simulator.set_faults(latency_ms=50)
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    settings.LLM_ENDPOINT_ALLOWLIST = [llm_simulator.base_url]
    job = run_dpo(llm_simulator, mode="greedy")
    assert job.items_done == len(FRUIT_PROMPTS)
    assert job.report["engine"]["llm"]["requests"] == len(FRUIT_PROMPTS)  # counted: the job's own client
    assert llm_simulator.max_in_flight <= 8  # the job's concurrency held across items


@pytest.mark.parametrize("mode, selection", [("best_of", "best_of"), ("beam", "beam")])
def test_best_of_and_beam_keep_one_selected_reject_per_prompt(llm_simulator, feedback_prompts, mode, selection):
    job = run_dpo(llm_simulator, mode=mode, n=3, temperature=0.8)
    pairs = list(PreferencePair.objects.filter(job=job))
    assert len(pairs) == len(FRUIT_PROMPTS)
    assert {p.metrics["selection"] for p in pairs} == {selection}
    assert {p.metrics["selected_from"] for p in pairs} == {3}
    if mode == "best_of":
        assert all("mean_logprob" in p.metrics for p in pairs)
