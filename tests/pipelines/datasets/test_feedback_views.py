"""Pages at /feedback/: the feedback samples list (filters, escaping, query counts, reviewer
actions), imports (staff), the call-log pages and the builder form (preview, write, download)."""
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from pipelines.jobs.services import job_create, run_job_inline
from pipelines.models import Export, FeedbackSample, Job, JobKind, LogRecord, ReviewDecision
from tests.pipelines.datasets.source_files import FEEDBACK_ENTRIES, write_feedback_file, write_log_folder

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def make_samples(n, **overrides):
    start = timezone.make_aware(datetime(2025, 1, 1, 12, 0))
    return [
        FeedbackSample.objects.create(
            feedback_id=f"fb-{i}", instruction=f"第{i}个问题：请介绍一下故宫", output=f"第{i}个回答：故宫是明清两代的皇宫。",
            rating=5 if i % 2 else 4, model_name="huanhuan-qwen" if i % 3 else "huanhuan-glm",
            rated_at=start + timedelta(days=i), **overrides)
        for i in range(n)
    ]


@pytest.mark.parametrize("name,args", [("feedback:samples", []), ("feedback:logs", []), ("feedback:builder", []),
                                       ("feedback:log_records", [1])])
def test_anonymous_users_are_sent_to_login(client, name, args):
    response = client.get(reverse(name, args=args))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_anonymous_decide_is_redirected_and_changes_nothing(client):
    sample = make_samples(1)[0]
    response = client.post(reverse("feedback:decide", args=[sample.pk]), {"decision": "accepted", "version": 1})
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert FeedbackSample.objects.get(pk=sample.pk).decision == ReviewDecision.PENDING


def test_list_shows_full_text_escaped(reviewer_client):
    long_output = "臣妾" * 800 + "<script>alert('x')</script>结尾"
    FeedbackSample.objects.create(feedback_id="x", instruction="问", output=long_output, rating=5, model_name="m",
                                  rated_at=timezone.now())
    html = reviewer_client.get(reverse("feedback:samples")).content.decode()
    assert "臣妾" * 800 in html and "结尾" in html  # full text, not truncated
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html


@pytest.mark.parametrize(("query", "expected"), [
    ({"decision": "all"}, 10),
    ({"decision": "all", "rating": "5"}, 5),
    ({"decision": "all", "model": "huanhuan-glm"}, 4),
    ({"decision": "all", "date_from": "2025-01-03", "date_to": "2025-01-05"}, 3),
    ({"decision": "all", "rating": "4", "model": "huanhuan-qwen"}, 3),
    ({}, 9),  # pending by default
    ({"decision": "accepted"}, 1),
    ({"decision": "all", "rating": "abc", "date_from": "not-a-date"}, 10),  # bad values are ignored
])
def test_filters(reviewer_client, reviewer, query, expected):
    samples = make_samples(10)
    samples[0].decision = ReviewDecision.ACCEPTED
    samples[0].save()
    response = reviewer_client.get(reverse("feedback:samples"), query)
    assert response.status_code == 200
    assert len(response.context["samples"]) == expected


def test_list_query_count_does_not_grow_with_samples(reviewer_client, reviewer, django_assert_max_num_queries):
    make_samples(3, decision=ReviewDecision.ACCEPTED, decided_by=reviewer)
    with django_assert_max_num_queries(12) as few:
        reviewer_client.get(reverse("feedback:samples"), {"decision": "all"})
    FeedbackSample.objects.all().delete()
    make_samples(20, decision=ReviewDecision.ACCEPTED, decided_by=reviewer)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = reviewer_client.get(reverse("feedback:samples"), {"decision": "all"})
    assert len(response.context["samples"]) == 20


def test_htmx_filter_request_renders_only_the_list(reviewer_client):
    make_samples(2)
    response = reviewer_client.get(reverse("feedback:samples"), HTTP_HX_TARGET="sample-list", **HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="sample-list"') and "<html" not in html


def test_htmx_history_restore_gets_the_whole_page(reviewer_client):
    make_samples(2)
    response = reviewer_client.get(reverse("feedback:samples"), HTTP_HX_TARGET="sample-list",
                                   HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HTMX)
    assert b"<html" in response.content


def test_reviewer_accepts_with_htmx_and_gets_the_card_back(reviewer_client, reviewer):
    sample = make_samples(1)[0]
    response = reviewer_client.post(reverse("feedback:decide", args=[sample.pk]),
                                    {"decision": "accepted", "version": 1, "filters": "decision=pending"}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<article class="fb-card fb-accepted" id="feedback-{sample.pk}"')
    assert 'name="version" value="2"' in html and "reviewer1" in html
    sample.refresh_from_db()
    assert (sample.decision, sample.decided_by) == (ReviewDecision.ACCEPTED, reviewer)


def test_reviewer_edits_the_output(reviewer_client):
    sample = make_samples(1)[0]
    reviewer_client.post(reverse("feedback:decide", args=[sample.pk]),
                         {"decision": "edited", "version": 1, "edited_output": "改写后的回答<b>"}, **HTMX)
    sample.refresh_from_db()
    assert (sample.decision, sample.edited_output) == (ReviewDecision.EDITED, "改写后的回答<b>")


def test_stale_version_gets_409_with_the_message_in_the_card(reviewer_client, other_reviewer):
    sample = make_samples(1)[0]
    from pipelines.datasets.services import feedback_sample_decide

    feedback_sample_decide(sample=sample, user=other_reviewer, decision="rejected", version=1)
    response = reviewer_client.post(reverse("feedback:decide", args=[sample.pk]),
                                    {"decision": "accepted", "version": 1}, **HTMX)
    assert response.status_code == 409
    assert "reviewer2" in response.content.decode() and 'name="version" value="2"' in response.content.decode()
    assert FeedbackSample.objects.get(pk=sample.pk).decision == ReviewDecision.REJECTED


def test_an_edit_refused_for_a_stale_version_keeps_the_reviewers_text(reviewer_client, other_reviewer):
    sample = make_samples(1)[0]
    from pipelines.datasets.services import feedback_sample_decide

    feedback_sample_decide(sample=sample, user=other_reviewer, decision="accepted", version=1)
    response = reviewer_client.post(reverse("feedback:decide", args=[sample.pk]),
                                    {"decision": "edited", "version": 1, "edited_output": "我改了半天的回答"}, **HTMX)
    assert response.status_code == 409
    html = response.content.decode()
    assert "我改了半天的回答</textarea>" in html and "data-fb-edit open" in html


def test_without_htmx_decide_redirects_back_to_the_filtered_list(reviewer_client):
    sample = make_samples(1)[0]
    response = reviewer_client.post(reverse("feedback:decide", args=[sample.pk]),
                                    {"decision": "rejected", "version": 1, "filters": "rating=4&decision=pending"})
    assert response.status_code == 302 and response.url == reverse("feedback:samples") + "?rating=4&decision=pending"


def test_decide_on_a_missing_sample_is_404(reviewer_client):
    assert reviewer_client.post(reverse("feedback:decide", args=[999]), {"decision": "accepted", "version": 1}).status_code == 404


def test_shortcut_attributes_are_on_the_actions(reviewer_client):
    make_samples(1)
    html = reviewer_client.get(reverse("feedback:samples")).content.decode()
    for key in ('data-fb-key="a"', 'data-fb-key="r"', 'data-fb-key="e"', 'data-key="j"', 'data-key="k"'):
        assert key in html
    assert "js/shortcuts.js" in html and "js/feedback.js" in html and "<script>" not in html


# --------------------------------------------------------------------------- imports (staff)

def upload(name="fb.jsonl", content=None):
    content = content if content is not None else "\n".join(json.dumps(e, ensure_ascii=False) for e in FEEDBACK_ENTRIES)
    return SimpleUploadedFile(name, content.encode("utf-8"), content_type="application/json")


def test_reviewers_cannot_import(reviewer_client):
    response = reviewer_client.post(reverse("feedback:import"), {"feedback_file": upload()})
    assert response.status_code == 403 and not Job.objects.exists()


def test_staff_upload_queues_an_import_job_that_imports(staff_client):
    response = staff_client.post(reverse("feedback:import"), {"feedback_file": upload(), "min_rating": "5"})
    assert response.status_code == 302
    job = Job.objects.get(kind=JobKind.FEEDBACK_IMPORT)
    assert Path(job.params["feedback_file"]).is_relative_to(Path(settings.MEDIA_ROOT).resolve())
    run_job_inline(job)
    assert sorted(FeedbackSample.objects.values_list("feedback_id", flat=True)) == ["fb-1", "fb-4"]


def test_oversized_or_wrong_type_uploads_are_refused(staff_client, settings):
    settings.UPLOAD_MAX_BYTES = 10
    response = staff_client.post(reverse("feedback:import"), {"feedback_file": upload()}, follow=True)
    assert "文件过大" in response.content.decode()
    settings.UPLOAD_MAX_BYTES = 10_000
    response = staff_client.post(reverse("feedback:import"), {"feedback_file": upload("fb.exe")}, follow=True)
    assert "只接受 .json 或 .jsonl" in response.content.decode()
    assert not Job.objects.exists()


def test_a_bad_rating_is_refused_after_the_upload_and_its_file_is_removed(staff_client):
    folder = Path(settings.MEDIA_ROOT) / "feedback_uploads"
    before = set(folder.iterdir()) if folder.is_dir() else set()
    response = staff_client.post(reverse("feedback:import"), {"feedback_file": upload(), "min_rating": "高"},
                                 follow=True)
    assert "最低评分须是 1–5 的整数" in response.content.decode() and not Job.objects.exists()
    assert set(folder.iterdir()) == before
    response = staff_client.post(reverse("feedback:import"), {"feedback_file": upload("fb.exe"), "min_rating": "高"},
                                 follow=True)
    assert "只接受 .json 或 .jsonl" in response.content.decode()  # the upload is checked first


def test_an_unreadable_version_is_a_conflict(reviewer_client):
    sample = make_samples(1)[0]
    response = reviewer_client.post(reverse("feedback:decide", args=[sample.pk]),
                                    {"decision": "accepted", "version": "v1"}, **HTMX)
    assert response.status_code == 409 and FeedbackSample.objects.get(pk=sample.pk).decision == ReviewDecision.PENDING


# --------------------------------------------------------------------------- call logs

def test_log_import_is_confined_to_media_root(staff_client, tmp_path):
    response = staff_client.post(reverse("feedback:logs_import"), {"log_dir": "../../"}, follow=True)
    assert "MEDIA_ROOT" in response.content.decode() and not Job.objects.exists()
    write_log_folder(Path(settings.MEDIA_ROOT) / "logs" / "llm_calls")
    staff_client.post(reverse("feedback:logs_import"), {"log_dir": "logs/llm_calls"})
    assert Job.objects.filter(kind=JobKind.LOG_EXTRACTION).count() == 1


def test_a_missing_log_folder_is_named(staff_client):
    response = staff_client.post(reverse("feedback:logs_import"), {"log_dir": "logs/none"}, follow=True)
    assert "目录不存在：logs/none" in response.content.decode() and not Job.objects.exists()


def test_reviewers_cannot_start_log_imports(reviewer_client):
    assert reviewer_client.post(reverse("feedback:logs_import"), {"log_dir": "logs"}).status_code == 403


def test_logs_pages_show_report_and_records_escaped(reviewer_client, tmp_path, django_assert_max_num_queries):
    folder = write_log_folder(tmp_path / "logs")
    job = run_job_inline(job_create(kind=JobKind.LOG_EXTRACTION, params={"log_dir": str(folder)}))
    LogRecord.objects.filter(job=job, line_no=1).update(response="<img src=x onerror=alert(1)>回答")
    html = reviewer_client.get(reverse("feedback:logs")).content.decode()
    assert "malformed_json" in html and "calls_2025-03-01.jsonl" in html
    with django_assert_max_num_queries(8):
        html = reviewer_client.get(reverse("feedback:log_records", args=[job.pk])).content.decode()
    assert "第1批：甲乙丙" in html and "&lt;img src=x onerror=alert(1)&gt;回答" in html and "<img src=x" not in html
    other = Job.objects.create(kind=JobKind.FEEDBACK_IMPORT)
    assert reviewer_client.get(reverse("feedback:log_records", args=[other.pk])).status_code == 404


# --------------------------------------------------------------------------- builder

@pytest.fixture
def imported(tmp_path):
    folder = write_log_folder(tmp_path / "logs")
    log_job = run_job_inline(job_create(kind=JobKind.LOG_EXTRACTION, params={"log_dir": str(folder)}))
    path = write_feedback_file(tmp_path / "fb.jsonl")
    run_job_inline(job_create(kind=JobKind.FEEDBACK_IMPORT, params={"feedback_file": str(path)}))
    return log_job


def builder_data(**overrides):
    data = {"source": "combined", "logs_job": "", "feedback_min_rating": "4", "format": "alpaca", "container": "json",
            "dedup": "on", "dedup_field": "prompt", "near_dup_threshold": "0.8", "shuffle": "on", "seed": "42",
            "split_ratio": "", "name": "mix"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_builder_preview_shows_counts_and_first_records(reviewer_client, imported):
    partial = reviewer_client.post(reverse("feedback:builder_preview"), builder_data(), **HTMX)
    assert partial.status_code == 200
    assert partial.content.decode().lstrip().startswith('<section id="builder-result"')
    response = reviewer_client.post(reverse("feedback:builder_preview"), builder_data())
    html = response.content.decode()
    report = response.context["report"]
    assert report["total"] == 7  # 4 log records after dedup + 3 feedback samples
    assert {s["step"]: s["kept"] for s in report["steps"]}["dedup"] == 7
    assert report["sources"]["logs"]["read"] == 5 and report["sources"]["feedback"]["read"] == 3
    # The preview shows a feedback output with a <script> in it: as text.
    assert "alert(1)" in html and "<script>alert(1)" not in html
    assert not Export.objects.exists()


def test_builder_preview_with_one_source_cap_and_split(reviewer_client, imported):
    response = reviewer_client.post(reverse("feedback:builder_preview"),
                                    builder_data(source="logs", logs_job=str(imported.pk), logs_cap="3",
                                                 split_ratio="0.67,0.33"))
    report = response.context["report"]
    assert report["splits"] == {"train": 2, "test": 1} and set(report["sources"]) == {"logs"}


def test_builder_form_errors_are_shown(reviewer_client, imported):
    response = reviewer_client.post(reverse("feedback:builder_preview"), builder_data(split_ratio="0.8"), **HTMX)
    assert response.status_code == 400 and "拆分比例" in response.content.decode()


def test_reviewers_cannot_write(reviewer_client, imported):
    assert reviewer_client.post(reverse("feedback:builder_write"), builder_data(), **HTMX).status_code == 403
    assert not Export.objects.exists()


def test_staff_write_records_an_export_and_files_download(staff_client, imported):
    response = staff_client.post(reverse("feedback:builder_write"), builder_data(split_ratio="0.5,0.5"), **HTMX)
    assert response.status_code == 200 and "已写入" in response.content.decode()
    export = Export.objects.get(kind="builder")
    assert export.row_count == 7 and export.format == "alpaca"
    folder = Path(settings.EXPORT_ROOT) / export.path
    assert not Path(export.path).is_absolute() and (folder / "mix_train.json").is_file()
    assert set(export.files) == {"mix_train.json", "mix_test.json", "dataset_info.json", "mix_report.json",
                                 "mix_sources.jsonl"}
    info = json.loads((folder / "dataset_info.json").read_text(encoding="utf-8"))
    assert set(info) == {"mix_train", "mix_test"}
    download = staff_client.get(reverse("exports:file", args=[export.pk, "mix_train.json"]))
    assert download.status_code == 200
    rows = json.loads(b"".join(download.streaming_content).decode("utf-8"))
    assert len(rows) == export.report["splits"]["train"]
    assert staff_client.get(reverse("exports:file", args=[export.pk, "..%2F..%2Fsecret"])).status_code == 404
    assert staff_client.get(reverse("exports:file", args=[export.pk, "nope.json"])).status_code == 404
