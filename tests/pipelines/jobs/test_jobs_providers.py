"""Jobs against behaviours of real servers (see tests/pipelines/llm/test_providers.py for the client itself):
a request limit with relayed retry headers, thinking models, truncated answers, configuration
errors that stop a job, per-job figures."""
import pytest
from django.urls import reverse

from pipelines.jobs.services import job_create, run_job_inline
from pipelines.models import JobStatus
from review.models import Reasoning
from tests.pipelines.jobs.scenes import make_scene_dataset

pytestmark = pytest.mark.django_db


def classify(dataset, user, **params):
    return run_job_inline(job_create(kind="classification", params={"dataset": dataset.name, "mode": 3, **params},
                                     user=user))


def test_a_limited_server_behind_litellm_fails_no_item_and_the_page_shows_the_rate(
        llm_simulator, admin_user, staff_client):
    dataset, samples = make_scene_dataset(per_category=6, categories=4)  # 24 items
    # 8 answers per (scaled) window; LiteLLM's header only: `llm_provider-retry-after: <window>`.
    llm_simulator.set_faults(rate_limit=8, rate_window=1.0, retry_headers="litellm")
    job = classify(dataset, admin_user, concurrency=6, max_retries=1)
    assert job.status == JobStatus.DONE and job.items_done + job.items_failed == len(samples)
    # The simulator hedges a few answers on purpose (unparseable); no item failed for the limit.
    assert set(job.items.filter(status="failed").values_list("error_kind", flat=True)) <= {"unparseable"}
    rate = job.report["engine"]["rate"]
    assert rate["limited"] > 0 and rate["current_per_minute"]
    page = staff_client.get(reverse("jobs:detail", args=[job.pk])).content.decode()
    assert "模型请求速率" in page and f"{rate['current_per_minute']}" in page


def test_a_thinking_models_reasoning_is_kept_stored_and_shown(llm_simulator, scene_dataset, admin_user,
                                                             staff_client):
    dataset, samples = scene_dataset
    llm_simulator.set_faults(reasoning_models="qwen3-vl-thinking")
    classify(dataset, admin_user, model="qwen3-vl-thinking")
    row = Reasoning.objects.filter(mode=3).first()
    assert row.thinking and row.finish_reason == "stop"
    # The answer held only "类别：…"; the prompt asked for a reasoning, so the thinking is used as it.
    assert row.output.startswith("推理：") and row.thinking in row.output
    assert row.length > 20
    page = staff_client.get(reverse("review:sample", args=[row.sample_id])).content.decode()
    assert "思考过程" in page


def test_a_truncated_answer_fails_the_item_and_keeps_the_stored_output(llm_simulator, scene_dataset, admin_user):
    dataset, samples = scene_dataset
    classify(dataset, admin_user)
    before = dict(Reasoning.objects.filter(mode=3).values_list("sample_id", "output"))
    llm_simulator.set_faults(rate_truncated=1.0)
    job = classify(dataset, admin_user)
    assert job.items_failed == len(samples)
    assert set(job.items.values_list("error_kind", flat=True)) == {"truncated"}
    assert dict(Reasoning.objects.filter(mode=3).values_list("sample_id", "output")) == before


def test_a_thinking_model_out_of_tokens_never_stores_an_empty_output(llm_simulator, scene_dataset, admin_user):
    dataset, samples = scene_dataset
    classify(dataset, admin_user)
    llm_simulator.set_faults(reasoning_models="qwen3-vl-thinking", rate_truncated=1.0)
    job = classify(dataset, admin_user, model="qwen3-vl-thinking")
    assert job.items_failed == len(samples)
    assert not Reasoning.objects.filter(mode=3, output="").exists()


def test_a_jobs_report_counts_only_its_own_answers(llm_simulator, scene_dataset, admin_user):
    dataset, samples = scene_dataset
    first = classify(dataset, admin_user)
    assert first.report["accuracy"]["total"] == len(samples)
    llm_simulator.set_faults(rate_content_filter=1.0)
    second = classify(dataset, admin_user)
    assert second.items_failed == len(samples)
    assert second.report["accuracy"]["total"] == 0 and second.report["accuracy"]["rate"] is None


@pytest.mark.parametrize("faults, params, words", [
    ({"known_models": "qwen-vl-72b-instruct"}, {"model": "qwen-vl-72b-instrcut"}, "qwen-vl-72b-instrcut"),
    ({"api_key": "sk-not-the-configured-one"}, {}, "401"),
])
def test_a_configuration_error_stops_the_job_with_one_message(llm_simulator, admin_user, faults, params, words):
    dataset, samples = make_scene_dataset(per_category=8, categories=5)  # 40 items
    llm_simulator.set_faults(**faults)
    job = classify(dataset, admin_user, concurrency=2, **params)
    assert job.status == JobStatus.FAILED
    assert "配置错误" in job.error_summary and words in job.error_summary
    assert llm_simulator.request_count() <= 3 + 2 + 2  # the streak, what was in flight, the prefetch
    assert job.items.filter(status="pending").count() >= len(samples) - 7  # resumable once fixed
