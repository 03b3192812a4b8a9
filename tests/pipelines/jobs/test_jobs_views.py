"""Job pages: who may see and do what, htmx partials, escaping, query counts."""
import pytest
from django.urls import reverse

from pipelines.jobs.services import job_create, run_job_inline
from pipelines.models import ItemStatus, Job, JobItem, JobStatus, PromptTemplate
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def make_job_with_items(n_done=3, n_failed=25, error='<script>alert("x")</script>'):
    job = JobFactory(status=JobStatus.DONE, items_total=n_done + n_failed, items_done=n_done, items_failed=n_failed)
    JobItem.objects.bulk_create(
        [JobItem(job=job, key=f"d{i}", status=ItemStatus.DONE) for i in range(n_done)]
        + [JobItem(job=job, key=f"f{i}", status=ItemStatus.FAILED, error_kind="content_filter", error=error)
           for i in range(n_failed)]
    )
    return job


def test_anonymous_users_are_sent_to_login(client):
    job = JobFactory()
    for url in (reverse("jobs:list"), reverse("jobs:detail", args=[job.pk]), reverse("jobs:monitor")):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_reviewers_see_jobs_but_cannot_start_cancel_edit_prompts_or_monitor(reviewer_client, scene_dataset):
    dataset, _ = scene_dataset
    job = make_job_with_items()
    assert reviewer_client.get(reverse("jobs:list")).status_code == 200
    page = reviewer_client.get(reverse("jobs:detail", args=[job.pk]))
    assert page.status_code == 200
    assert "取消任务" not in page.content.decode() and "重试失败" not in page.content.decode()
    forbidden = [
        ("get", reverse("jobs:start", args=["classification"])),
        ("post", reverse("jobs:start", args=["classification"])),
        ("post", reverse("jobs:cancel", args=[job.pk])),
        ("post", reverse("jobs:resume", args=[job.pk])),
        ("post", reverse("jobs:retry_failed", args=[job.pk])),
        ("get", reverse("jobs:prompts")),
        ("post", reverse("jobs:prompt_edit", args=["classification_mode2"])),
        ("get", reverse("jobs:monitor")),
        ("get", reverse("jobs:monitor_panel")),
        ("get", reverse("jobs:rerun_wrong", args=[dataset.categories.first().pk])),
    ]
    for method, url in forbidden:
        assert getattr(reviewer_client, method)(url).status_code == 403, url
    assert Job.objects.count() == 1
    assert not PromptTemplate.objects.filter(version__gt=1).exists()


def test_job_detail_shows_first_failures_escaped_with_a_link_to_all(staff_client):
    job = make_job_with_items()
    html = staff_client.get(reverse("jobs:detail", args=[job.pk])).content.decode()
    assert "内容审核拒绝" in html
    assert html.count("&lt;script&gt;alert") == 20
    assert '<script>alert("x")' not in html
    assert f'{reverse("jobs:items", args=[job.pk])}?status=failed' in html
    assert "重试失败的 25 个条目" in html
    items = staff_client.get(reverse("jobs:items", args=[job.pk]), {"status": "failed"}).content.decode()
    assert items.count("&lt;script&gt;alert") == 25


def test_progress_partial_polls_only_while_active(staff_client):
    job = JobFactory(status=JobStatus.RUNNING, items_total=2)
    JobItem.objects.create(job=job, key="a", status=ItemStatus.DONE)
    JobItem.objects.create(job=job, key="b")
    url = reverse("jobs:progress", args=[job.pk])
    html = staff_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="job-progress"' in html and 'hx-trigger="every 2s"' in html and "<html" not in html
    Job.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED)
    html = staff_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in html
    assert "继续（只运行未完成的条目）" in html


def test_start_form_creates_a_job_and_redirects(staff_client, scene_dataset, django_capture_on_commit_callbacks):
    dataset, samples = scene_dataset
    category = samples[0].label
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(reverse("jobs:start", args=["classification"]),
                                     {"dataset": dataset.pk, "mode": 3, "categories": [category.pk], "concurrency": 4})
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("jobs:detail", args=[job.pk])
    assert job.params["mode"] == 3 and job.params["categories"] == [category.name] and job.params["concurrency"] == 4
    assert job.items_total == 2 and job.created_by.username == "admin"
    assert len(callbacks) == 1  # enqueued after commit


def test_start_form_reports_errors_and_creates_nothing(staff_client, scene_dataset):
    dataset, _ = scene_dataset
    response = staff_client.post(reverse("jobs:start", args=["classification"]),
                                 {"dataset": dataset.pk, "mode": 2, "concurrency": 0})
    assert response.status_code == 200 and Job.objects.count() == 0
    assert "concurrency" in response.content.decode() or "1" in response.content.decode()


def test_unknown_kind_is_404(staff_client):
    assert staff_client.get(reverse("jobs:start", args=["nonsense"])).status_code == 404


def test_analysis_link_leads_to_the_rerun_form(staff_client, scene_dataset):
    dataset, samples = scene_dataset
    category = samples[0].label
    response = staff_client.get(reverse("jobs:create"), {"kind": "classification_rerun_wrong",
                                                         "dataset": dataset.pk, "category": category.pk, "mode": 3})
    assert response.status_code == 302
    page = staff_client.get(response["Location"])
    assert page.status_code == 200 and category.name in page.content.decode()
    assert "推理部分请控制在100字以内" in page.content.decode()  # the mode 3 prompt, pre-filled


def test_cancel_and_resume_buttons(staff_client, scene_dataset):
    dataset, _ = scene_dataset
    job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 2})
    response = staff_client.post(reverse("jobs:cancel", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    staff_client.post(reverse("jobs:resume", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    # Cancelling a finished job is refused with a message, nothing changes.
    Job.objects.filter(pk=job.pk).update(status=JobStatus.DONE)
    response = staff_client.post(reverse("jobs:cancel", args=[job.pk]), follow=True)
    assert "任务已结束" in response.content.decode()


def test_prompt_editor_saves_a_new_version(staff_client):
    url = reverse("jobs:prompt_edit", args=["classification_mode2"])
    page = staff_client.get(url).content.decode()
    assert "{category_definitions}" in page
    text = "请判断图片类别。\n{category_definitions}\n推理：…\n类别：<名称>"
    response = staff_client.post(url, {"text": text, "note": "更短"})
    assert response.status_code == 302
    latest = PromptTemplate.objects.filter(kind="classification_mode2").order_by("-version").first()
    assert latest.version == 2 and latest.text == text and latest.note == "更短"


def test_list_and_detail_query_counts_stay_flat(staff_client, django_assert_max_num_queries):
    for _ in range(30):
        make_job_with_items(n_done=2, n_failed=2)
    with django_assert_max_num_queries(8):
        assert staff_client.get(reverse("jobs:list")).status_code == 200
    job = Job.objects.first()
    with django_assert_max_num_queries(12):
        assert staff_client.get(reverse("jobs:detail", args=[job.pk])).status_code == 200
    with django_assert_max_num_queries(8):
        assert staff_client.get(reverse("jobs:items", args=[job.pk])).status_code == 200


def test_finished_classification_job_page_shows_accuracy(llm_simulator, staff_client, scene_dataset):
    dataset, samples = scene_dataset
    job = run_job_inline(job_create(kind="classification", params={"dataset": dataset.name, "mode": 2}))
    html = staff_client.get(reverse("jobs:detail", args=[job.pk])).content.decode()
    assert f"{job.report['accuracy']['correct']} / {len(samples)}" in html
    assert "sk-test-simulator-key" not in html
