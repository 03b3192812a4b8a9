"""The job page in a real Chromium: htmx-polled progress, reload when the job ends, cancel with confirm."""
import pytest

from pipelines.models import ItemStatus, Job, JobItem, JobStatus
from tests.factories import JobFactory, UserFactory


def running_job(done: int, pending: int) -> Job:
    job = JobFactory(status=JobStatus.RUNNING, items_total=done + pending, params={"dataset": "scenes", "mode": 2})
    JobItem.objects.bulk_create(
        [JobItem(job=job, key=f"d{i}", status=ItemStatus.DONE) for i in range(done)]
        + [JobItem(job=job, key=f"p{i}") for i in range(pending)]
    )
    return job


@pytest.mark.browser
def test_progress_updates_while_running_and_the_report_appears_when_done(browser_page, browser_login, live_server):
    admin = UserFactory(username="boss", is_staff=True)
    job = running_job(done=2, pending=3)
    page = browser_login(admin)
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    page.wait_for_selector("#job-progress .job-counts:has-text('2 / 5')")

    JobItem.objects.filter(job=job, key__in=["p0", "p1"]).update(status=ItemStatus.DONE)
    page.wait_for_selector("#job-progress .job-counts:has-text('4 / 5')")  # polled, no reload

    JobItem.objects.filter(job=job, key="p2").update(status=ItemStatus.FAILED, error_kind="content_filter",
                                                     error="内容审核拒绝 (data_inspection_failed)")
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.DONE, items_done=4, items_failed=1, error_summary="1 个条目失败：内容审核拒绝×1",
        report={"mode": 2, "prompt_version": 1, "model": "qwen-vl-72b-instruct",
                "accuracy": {"correct": 3, "wrong": 1, "unparseable": 0, "total": 4, "rate": 0.75}},
    )
    page.wait_for_selector("text=3 / 4（75%）")  # the page reloaded once to show the report
    assert page.locator("#job-progress[hx-trigger]").count() == 0, "a finished job is not polled"
    assert page.locator(".job-failures").inner_text().count("内容审核拒绝") >= 1
    assert not browser_page.page_errors
    assert not browser_page.console_errors  # nothing blocked by the CSP, no htmx error, no /favicon.ico 404


@pytest.mark.browser
def test_cancel_asks_for_confirmation(browser_page, browser_login, live_server):
    admin = UserFactory(username="boss", is_staff=True)
    job = running_job(done=1, pending=4)
    page = browser_login(admin)
    page.goto(f"{live_server.url}/jobs/{job.pk}/")

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("text=取消任务")
    page.wait_for_timeout(300)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=取消任务")
    page.wait_for_selector("text=已请求取消")
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED  # no execution held its lease: cancelled at once
    assert page.locator("text=继续（只运行未完成的条目）").count() == 1
