"""Generation + judge against models that refuse parameters (OpenAI o-series: any temperature → 400):
judge parameters are settings (per job and by default), unset ones are not sent, and a failed judge
call keeps the generated answer so judging again does not generate again."""
import json
from io import StringIO

import pytest
from django.core.management import call_command

from pipelines.jobs.services import job_retry_failed, run_job_inline
from pipelines.generation.judge import judge_request_params
from pipelines.models import GeneratedExample, Job, JobStatus
from tests.pipelines.generation.data import MARKED_SOURCES, start_run

pytestmark = pytest.mark.django_db

O3 = {"refuse_param": "temperature", "refuse_param_models": "o3"}


def test_judge_parameters_come_from_the_job_then_the_settings_and_unset_ones_are_omitted(settings):
    settings.LLM_JUDGE_TEMPERATURE, settings.LLM_JUDGE_MAX_TOKENS, settings.LLM_JUDGE_TOP_P = "0", "512", ""
    assert judge_request_params({}) == {"temperature": 0.0, "max_tokens": 512}
    assert judge_request_params({"judge_temperature": 0.3}) == {"temperature": 0.3, "max_tokens": 512}
    assert judge_request_params({"judge_temperature": "omit", "judge_max_tokens": "omit"}) == {}
    settings.LLM_JUDGE_TEMPERATURE = ""
    assert "temperature" not in judge_request_params({})


def test_a_judge_that_refuses_temperature_stops_the_run_and_keeps_the_answers(
        marked_sources, llm_simulator, admin_user, settings):
    llm_simulator.set_faults(**O3)
    job = run_job_inline(start_run(marked_sources, user=admin_user, judge_model="o3-mini", concurrency=1))
    # Fail fast: three identical 400s, one clear message, the rest not run.
    assert job.status == JobStatus.FAILED and "temperature" in job.error_summary
    failed = list(job.items.filter(status="failed").values_list("key", flat=True))
    assert len(failed) == 3 and job.items.filter(status="pending").exists()
    kept = GeneratedExample.objects.filter(job=job, source_item__external_id__in=failed)
    assert kept.count() == 3 and all(e.response and e.question for e in kept)
    assert {e.validation_result["stage"] for e in kept} == {"judge_error"}

    # Fixed by the setting: judging again asks the judge only, never the generator.
    settings.LLM_JUDGE_TEMPERATURE = ""
    llm_simulator.reset_counts()
    retry = run_job_inline(job_retry_failed(job=job, user=admin_user))
    assert (retry.items_done, retry.items_failed) == (3, 0)
    assert llm_simulator.request_count() == 3
    rejudged = GeneratedExample.objects.filter(job=retry)
    assert {e.response for e in rejudged} == {e.response for e in kept}
    assert all(e.validation_result["stage"] == "judge" for e in rejudged)


def test_a_per_job_judge_parameter_can_be_omitted(marked_sources, llm_simulator, admin_user):
    llm_simulator.set_faults(**O3)
    job = run_job_inline(start_run(marked_sources, user=admin_user, judge_model="o3-mini",
                                   judge_temperature="omit"))
    assert job.status == JobStatus.DONE and job.items_failed == 0
    assert GeneratedExample.objects.filter(job=job).exclude(judge_raw="").count() == 6  # every judge call answered


def test_run_generation_takes_model_judge_model_and_max_tokens(marked_sources, llm_simulator, tmp_path):
    source = tmp_path / "data_clean.json"
    source.write_text(json.dumps(MARKED_SOURCES, ensure_ascii=False), encoding="utf-8")
    call_command("run_generation", "--source", str(source), "--output", str(tmp_path / "out"), "--sample", "2",
                 "--inline", "--model", "qwen-vl-max", "--judge-model", "qwen-72b-judge", "--max-tokens", "900",
                 "--judge-temperature", "omit", stdout=StringIO(), stderr=StringIO())
    job = Job.objects.latest("created_at")
    assert (job.params["model"], job.params["judge_model"], job.params["max_tokens"]) == \
        ("qwen-vl-max", "qwen-72b-judge", 900)
    assert job.params["judge_temperature"] == "omit"
    assert GeneratedExample.objects.filter(job=job).count() == 2


def test_the_start_form_takes_the_judge_model_and_temperature(marked_sources, staff_client):
    from django.urls import reverse

    staff_client.post(reverse("generation:start"), {"collection": marked_sources, "judge_model": "o3-mini",
                                                    "judge_temperature": "omit"})
    job = Job.objects.latest("created_at")
    assert (job.params["judge_model"], job.params["judge_temperature"]) == ("o3-mini", "omit")
