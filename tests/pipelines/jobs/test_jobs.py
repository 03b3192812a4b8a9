"""The job engine against the simulator over real HTTP: counts, faults, cancel, resume, retry."""
from collections import Counter

import pytest

from pipelines.jobs.selectors import job_progress
from pipelines.jobs.services import job_create, run_job_inline
from pipelines.models import ItemStatus, JobStatus
from review.models import Reasoning
from tests.pipelines.jobs.scenes import make_scene_dataset


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


@pytest.mark.django_db
def test_a_job_never_has_more_model_calls_open_than_its_concurrency(llm_simulator, admin_user):
    # The engine hands the loop more items than `concurrency` (so a slot never waits for the
    # database); the server must still never see more than `concurrency` requests at once.
    llm_simulator.set_faults(latency_ms=60)
    dataset, samples = make_scene_dataset(name="bounded", per_category=6, categories=4)
    job = run_job_inline(job_create(kind="classification", params={"dataset": dataset.name, "mode": 2, "concurrency": 4},
                                    user=admin_user))
    assert job.items_done + job.items_failed == len(samples)
    assert llm_simulator.max_in_flight == 4
    assert set(llm_simulator.answered_counts().values()) == {1}


@pytest.mark.django_db
def test_a_storm_of_429_500_and_hangs_still_completes_with_correct_counts(llm_simulator, settings, admin_user):
    settings.LLM_TIMEOUT = 0.5  # a hang is cut off by the client timeout and retried
    llm_simulator.set_faults(rate_429=0.25, rate_500=0.2, rate_hang=0.1, retry_after=0.05, hang_seconds=5)
    dataset, samples = make_scene_dataset(name="storm", per_category=6, categories=5)
    job = job_create(kind="classification",
                     params={"dataset": dataset.name, "mode": 2, "concurrency": 8, "max_retries": 12}, user=admin_user)
    job = run_job_inline(job)

    assert job.status == JobStatus.DONE
    outcomes = llm_simulator.outcome_counts()
    assert outcomes.get("429", 0) > 0 and outcomes.get("500", 0) > 0 and outcomes.get("hang", 0) > 0
    transient = job.items.filter(error_kind__in=["rate_limited", "server_error", "timeout"]).count()
    assert transient == 0, "retries should have absorbed every transient fault"
    unparseable = job.items.filter(error_kind="unparseable").count()
    assert job.items_done + unparseable == len(samples)
    assert job.items_failed == unparseable
    assert Reasoning.objects.filter(sample__dataset=dataset, mode=2).count() == len(samples)
    llm = job.report["engine"]["llm"]
    assert llm["retries"] >= outcomes["429"] + outcomes["500"]
    assert set(llm_simulator.answered_counts().values()) == {1}


@pytest.mark.django_db
def test_content_filter_refusals_are_recorded_per_item_and_never_retried(llm_simulator, scene_dataset, admin_user):
    dataset, samples = scene_dataset
    llm_simulator.set_faults(rate_content_filter=0.4)
    job = run_job_inline(job_create(kind="classification", params={"dataset": dataset.name, "mode": 1},
                                    user=admin_user))
    refused = list(job.items.filter(error_kind="content_filter"))
    assert refused, "the fault rate should refuse some of the 10 images"
    assert job.status == JobStatus.DONE
    assert job.items_done + job.items_failed == len(samples)
    assert all("内容审核" in item.error for item in refused)
    # A refusal is permanent for that input: exactly one request per refused item.
    assert llm_simulator.outcome_counts()["content_filter"] == len(refused)
    assert job.report["engine"]["errors_by_kind"]["content_filter"] == len(refused)
    assert "内容审核拒绝" in job.error_summary
    refused_ids = {int(item.key) for item in refused}
    assert not Reasoning.objects.filter(sample_id__in=refused_ids).exists()


@pytest.mark.django_db
def test_api_key_never_appears_in_reports_or_errors(llm_simulator, scene_dataset, admin_user, settings):
    dataset, _ = scene_dataset
    llm_simulator.set_faults(rate_content_filter=0.5)
    job = run_job_inline(job_create(kind="classification",
                                    params={"dataset": dataset.name, "mode": 2, "api_key": "sk-sneaky"},
                                    user=admin_user))
    text = repr(job.params) + repr(job.report) + job.error_summary + "".join(job.items.values_list("error", flat=True))
    assert settings.OPENAI_API_KEY not in text and "sk-sneaky" not in text


@pytest.mark.django_db
def test_cancel_stops_dispatching_and_resume_runs_only_the_rest(llm_simulator, admin_user, settings):
    from pipelines.jobs.engine import job_execute
    from pipelines.jobs.services import job_cancel, job_resume

    settings.JOB_HEARTBEAT_SECONDS = 0.1  # the engine looks at the job's status this often
    dataset, samples = make_scene_dataset(name="cancel", per_category=4, categories=5)
    job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 3, "concurrency": 2},
                     user=admin_user)
    cancelled = {}

    def cancel_after_a_few(progress):
        if progress.finished >= 4 and not cancelled:
            cancelled["at"] = progress.finished
            job_cancel(job=job, user=admin_user)

    llm_simulator.set_faults(latency_ms=100)
    assert job_execute(job_id=job.pk, on_progress=cancel_after_a_few) == "cancelled"
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    finished_at_cancel = job.items.filter(status__in=[ItemStatus.DONE, ItemStatus.FAILED]).count()
    assert 4 <= finished_at_cancel < len(samples)
    assert not job.items.filter(status=ItemStatus.RUNNING).exists()
    done_keys = set(job.items.filter(status=ItemStatus.DONE).values_list("key", flat=True))

    llm_simulator.reset_counts()
    llm_simulator.set_faults(latency_ms=0)
    job = run_job_inline(job_resume(job=job, user=admin_user))
    assert job.status == JobStatus.DONE
    assert job.items_done + job.items_failed == len(samples)
    # Resume ran only what had no outcome: one request per remaining item, none for done ones.
    assert llm_simulator.request_count() == len(samples) - finished_at_cancel
    assert done_keys <= set(job.items.filter(status=ItemStatus.DONE).values_list("key", flat=True))
    assert Reasoning.objects.filter(sample__dataset=dataset, mode=3).count() == len(samples)


@pytest.mark.django_db
def test_retry_failed_creates_a_child_job_over_the_failed_items_only(llm_simulator, scene_dataset, admin_user):
    from pipelines.jobs.services import job_retry_failed

    dataset, samples = scene_dataset
    llm_simulator.set_faults(rate_500=1.0)
    job = run_job_inline(job_create(kind="classification",
                                    params={"dataset": dataset.name, "mode": 2, "max_retries": 1},
                                    user=admin_user))
    assert job.status == JobStatus.FAILED and job.items_failed == len(samples)
    assert set(job.items.values_list("error_kind", flat=True)) == {"server_error"}

    llm_simulator.set_faults(rate_500=0.0)
    retry = job_retry_failed(job=job, user=admin_user, params={"max_retries": 3})
    assert retry.parent_id == job.pk and retry.items_total == len(samples)
    retry = run_job_inline(retry)
    assert retry.status == JobStatus.DONE
    assert Reasoning.objects.filter(sample__dataset=dataset, mode=2).count() == len(samples)


@pytest.mark.django_db
def test_an_item_that_keeps_killing_its_worker_is_given_up(llm_simulator, scene_dataset, admin_user, settings):
    from pipelines.jobs.engine import job_execute
    from pipelines.models import JobItem

    dataset, samples = scene_dataset
    job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 2}, user=admin_user)
    poison = job.items.order_by("id").first()
    # As if three executions had claimed it and died.
    JobItem.objects.filter(pk=poison.pk).update(attempts=settings.JOB_MAX_DELIVERIES, status=ItemStatus.RUNNING)
    assert job_execute(job_id=job.pk) == "done"
    poison.refresh_from_db()
    assert poison.status == ItemStatus.FAILED and poison.error_kind == "max_deliveries"
    job.refresh_from_db()
    assert job.items_done + job.items_failed == len(samples)


@pytest.mark.django_db
def test_retry_failed_after_fixing_the_prompt_uses_the_fixed_prompt(llm_simulator, scene_dataset, admin_user, client):
    from django.urls import reverse

    from pipelines.jobs.services import job_retry_failed
    from pipelines.jobs.prompts import prompt_current, prompt_save_version
    from pipelines.models import PromptTemplate

    dataset, samples = scene_dataset
    llm_simulator.set_faults(rate_content_filter=0.5)
    job = run_job_inline(job_create(kind="classification", params={"dataset": dataset.name, "mode": 2},
                                    user=admin_user))
    assert job.items_failed and job.params["prompt_version"] == 1
    client.force_login(admin_user)
    assert "使用提示词的最新版本" in client.get(reverse("jobs:detail", args=[job.pk])).content.decode()

    fixed = prompt_save_version(kind=PromptTemplate.Kind.CLASSIFICATION_MODE2,
                                text=prompt_current(PromptTemplate.Kind.CLASSIFICATION_MODE2).text + "\n请只根据图片判断。",
                                user=admin_user)
    retry = job_retry_failed(job=job, user=admin_user)
    assert (retry.params["prompt_template_id"], retry.params["prompt_version"]) == (fixed.pk, 2)
    assert retry.params["dataset_id"] == dataset.pk and retry.items_total == job.items_failed
    retry = run_job_inline(retry)
    retried = {int(key) for key in retry.items.values_list("key", flat=True)}
    assert set(Reasoning.objects.filter(sample_id__in=retried, mode=2).values_list("prompt_template_id", flat=True)) == {
        fixed.pk}
    # A version given explicitly is kept.
    pinned = job_retry_failed(job=job, user=admin_user, params={"prompt_template_id": job.params["prompt_template_id"]})
    assert pinned.params["prompt_version"] == 1


@pytest.mark.django_db
def test_giving_up_one_interrupted_item_does_not_end_the_job_early(llm_simulator, scene_dataset, admin_user, settings):
    from pipelines.jobs.engine import job_execute
    from pipelines.models import JobItem

    dataset, samples = scene_dataset
    job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 2}, user=admin_user)
    first, second, third = job.items.order_by("id")[:3]
    # Two items that killed three executions each, one interrupted once: they run last, one at a time.
    JobItem.objects.filter(pk__in=[first.pk, second.pk]).update(attempts=settings.JOB_MAX_DELIVERIES)
    JobItem.objects.filter(pk=third.pk).update(attempts=1)
    assert job_execute(job_id=job.pk) == "done"
    outcomes = dict(job.items.values_list("pk", "error_kind"))
    assert outcomes[first.pk] == outcomes[second.pk] == "max_deliveries"
    assert not job.items.exclude(status__in=[ItemStatus.DONE, ItemStatus.FAILED]).exists()
    assert job.items.get(pk=third.pk).error_kind != "max_deliveries"
    assert len(llm_simulator.answered_counts()) == len(samples) - 2


@pytest.mark.django_db
def test_a_time_slice_ends_without_starting_queued_calls(llm_simulator, admin_user, settings, monkeypatch):
    import threading
    import time
    import types

    from pipelines.jobs import engine
    from pipelines.jobs.engine import job_execute
    from tests.security.servers import wait_until

    settings.JOB_HEARTBEAT_SECONDS = 0.05  # the engine looks at its deadline this often
    llm_simulator.set_faults(latency_ms=1500)
    dataset, samples = make_scene_dataset(name="slice", per_category=2, categories=5)
    job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 2, "concurrency": 2},
                     user=admin_user)
    # The slice ends the moment two calls are in flight and a third waits for a slot (a condition,
    # not a 0.1 s budget a loaded machine can spend before the first call is even sent): the engine's
    # clock jumps past its deadline then.
    skipped = [0.0]
    monkeypatch.setattr(engine, "time", types.SimpleNamespace(monotonic=lambda: time.monotonic() + skipped[0]))

    def end_the_slice_when_two_calls_run():
        wait_until(lambda: llm_simulator.request_count() >= 2, timeout=60, what="two calls in flight")
        skipped[0] = 3600.0

    watcher = threading.Thread(target=end_the_slice_when_two_calls_run, daemon=True)
    watcher.start()
    assert job_execute(job_id=job.pk, time_budget=600) == "continue"
    watcher.join(timeout=5)
    finished = job.items.filter(status__in=[ItemStatus.DONE, ItemStatus.FAILED])
    assert finished.count() == 2 == llm_simulator.request_count(), "the waiting call must not start after the deadline"
    rest = job.items.exclude(pk__in=finished.values("pk"))
    assert set(rest.values_list("status", "attempts")) == {(ItemStatus.PENDING, 0)}
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


@pytest.mark.django_db
def test_the_soft_time_limit_while_storing_loses_no_answer_and_fails_no_item(llm_simulator, scene_dataset,
                                                                             admin_user, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    from pipelines.jobs.kinds import get_handler
    from pipelines.jobs.engine import job_execute

    dataset, samples = scene_dataset
    handler = get_handler("classification")
    store_many, call, struck_keys, calls = handler.store_many, handler.call, [], Counter()

    def store_many_hit_by_the_limit(job, results):
        if not struck_keys:
            struck_keys.extend(key for key, _, _ in results)
            raise SoftTimeLimitExceeded()
        return store_many(job, results)

    async def counted_call(llm, payload, params):
        calls[str(payload["sample_id"])] += 1
        return await call(llm, payload, params)

    monkeypatch.setattr(handler, "store_many", store_many_hit_by_the_limit)
    monkeypatch.setattr(handler, "call", counted_call)
    job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 2}, user=admin_user)
    assert job_execute(job_id=job.pk) == "continue"
    assert struck_keys and not job.items.filter(status=ItemStatus.RUNNING).exists()
    assert not job.items.filter(error_kind="error").exists(), "the time limit is no item's failure"
    job = run_job_inline(job)
    assert job.status == JobStatus.DONE and job.items_done + job.items_failed == len(samples)
    # Answers that had come back when the limit struck were stored on the way out, not asked again
    # (calls still open were abandoned: those items are asked again).
    assert all(calls[key] == 1 for key in struck_keys)


@pytest.mark.django_db
def test_a_job_redelivered_too_often_is_failed_not_looped(scene_dataset, admin_user, settings):
    from pipelines.jobs.engine import job_execute
    from pipelines.models import Job

    dataset, _ = scene_dataset
    job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 2}, user=admin_user)
    Job.objects.filter(pk=job.pk).update(deliveries=settings.JOB_MAX_DELIVERIES, status=JobStatus.RUNNING)
    assert job_execute(job_id=job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert set(job.items.values_list("error_kind", flat=True)) == {"max_deliveries"}


@pytest.mark.django_db
def test_a_live_lease_makes_a_second_delivery_a_no_op(llm_simulator, scene_dataset, admin_user):
    from django.utils import timezone

    from pipelines.jobs.engine import job_execute
    from pipelines.models import Job

    dataset, _ = scene_dataset
    job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 2}, user=admin_user)
    # Another live process holds the lease (this test process, under another token).
    import os
    import socket
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now(),
                                         lease_token=f"{socket.gethostname()}:{os.getpid()}:1:other")
    assert job_execute(job_id=job.pk) == "busy"
    assert not job.items.exclude(status=ItemStatus.PENDING).exists()
    # A lease whose owner process is gone is taken over at once.
    Job.objects.filter(pk=job.pk).update(lease_token=f"{socket.gethostname()}:999999999:1:dead")
    assert job_execute(job_id=job.pk) == "done"


@pytest.mark.django_db
def test_job_create_rejects_bad_parameters(scene_dataset, admin_user):
    from core.errors import ApplicationError

    dataset, _ = scene_dataset
    with pytest.raises(ApplicationError, match="模式"):
        job_create(kind="classification", params={"dataset": dataset.name, "mode": 4}, user=admin_user)
    with pytest.raises(ApplicationError, match="数据集不存在"):
        job_create(kind="classification", params={"dataset": "nope", "mode": 1}, user=admin_user)
    with pytest.raises(ApplicationError, match="没有这些类别"):
        job_create(kind="classification", params={"dataset": dataset.name, "mode": 1, "categories": ["不存在"]})
    with pytest.raises(ApplicationError, match="concurrency"):
        job_create(kind="classification", params={"dataset": dataset.name, "mode": 1, "concurrency": 0})
    with pytest.raises(ApplicationError, match="未知的任务类型"):
        job_create(kind="nonsense", params={})


@pytest.mark.django_db
def test_job_create_enqueues_only_after_commit(scene_dataset, admin_user, django_capture_on_commit_callbacks):
    dataset, _ = scene_dataset
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job_create(kind="classification", params={"dataset": dataset.name, "mode": 2}, user=admin_user)
    assert len(callbacks) == 1



@pytest.mark.django_db
def test_orphaned_jobs_are_found_when_a_worker_starts(scene_dataset, admin_user, settings):
    from datetime import timedelta

    from django.utils import timezone

    from pipelines.jobs.recovery import jobs_recover_orphaned
    from pipelines.models import Job

    dataset, _ = scene_dataset
    dead = job_create(kind="classification", params={"dataset": dataset.name, "mode": 2}, user=admin_user)
    alive = job_create(kind="classification", params={"dataset": dataset.name, "mode": 3}, user=admin_user)
    fresh = job_create(kind="classification", params={"dataset": dataset.name, "mode": 1}, user=admin_user)
    lost = job_create(kind="classification", params={"dataset": dataset.name, "mode": 1}, user=admin_user)
    import os
    import socket
    now = timezone.now()
    Job.objects.filter(pk=dead.pk).update(status=JobStatus.RUNNING, heartbeat_at=now - timedelta(minutes=5),
                                          lease_token="elsewhere:1:1:x")
    Job.objects.filter(pk=alive.pk).update(status=JobStatus.RUNNING, heartbeat_at=now,
                                           lease_token=f"{socket.gethostname()}:{os.getpid()}:1:x")
    Job.objects.filter(pk=lost.pk).update(created_at=now - timedelta(minutes=5))
    assert sorted(jobs_recover_orphaned()) == sorted([dead.pk, lost.pk])
    assert fresh.pk not in jobs_recover_orphaned()
