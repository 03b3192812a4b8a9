"""The generation pages through the test client: permissions, the overrule flow, escaping, query counts."""
import json

import pytest
from django.urls import reverse

from pipelines.models import Export, GeneratedExample, Job, ReviewDecision, SourceItem
from tests.factories import JobFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _failed(job, key):
    return GeneratedExample.objects.get(job=job, source_item__external_id=key)


def _url(name, *args):
    return reverse(f"generation:{name}", args=args)


def test_anonymous_users_are_sent_to_login(client, finished_run):
    example = _failed(finished_run, "fail-1")
    for url in (_url("runs"), _url("analysis", finished_run.pk), _url("failed", finished_run.pk)):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    response = client.post(_url("decide", finished_run.pk, example.pk), {"decision": "accepted", "version": 1})
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert GeneratedExample.objects.get(pk=example.pk).decision == ReviewDecision.PENDING


def test_reviewer_overrules_with_an_edited_response(client, finished_run, reviewer):
    client.force_login(reviewer)
    example = _failed(finished_run, "no-think-1")
    page = client.get(_url("failed", finished_run.pk), {"reason": "Missing <think> tag"})
    assert page.status_code == 200
    html = page.content.decode()
    assert example.example_id in html and 'data-key="a"' in html and "缺少该标签" in html
    fixed = "<look>星空</look><think>旋转的笔触。</think><answer>星月夜</answer>"
    response = client.post(
        _url("decide", finished_run.pk, example.pk),
        {"decision": "edited", "version": example.version, "edited_response": fixed, "reason": "Missing <think> tag",
         "status": "pending", "page": 1},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    example.refresh_from_db()
    assert (example.decision, example.edited_response, example.decided_by, example.version) == (
        ReviewDecision.EDITED, fixed, reviewer, 2)
    # The pending filter now shows nothing more for that reason.
    assert "没有符合条件的未通过样本" in response.content.decode()


def test_htmx_history_restore_gets_the_whole_page(client, finished_run, reviewer):
    client.force_login(reviewer)
    partial = client.get(_url("failed", finished_run.pk), HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and b'id="review-card"' in partial.content
    response = client.get(_url("failed", finished_run.pk), HTTP_HX_REQUEST="true",
                          HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert b"<html" in response.content


def test_version_conflict_is_reported_and_nothing_is_overwritten(client, finished_run, reviewer, other_reviewer):
    example = _failed(finished_run, "fail-1")
    client.force_login(reviewer)
    assert client.post(_url("decide", finished_run.pk, example.pk),
                       {"decision": "accepted", "version": 1}).status_code == 302
    client.force_login(other_reviewer)
    response = client.post(_url("decide", finished_run.pk, example.pk),
                           {"decision": "rejected", "version": 1, "status": "all"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    assert "reviewer1" in response.content.decode()
    example.refresh_from_db()
    assert example.decision == ReviewDecision.ACCEPTED and example.decided_by == reviewer


def test_objects_of_another_run_are_404(client, finished_run, reviewer, admin_user):
    client.force_login(reviewer)
    other_run = JobFactory(kind="generation", params={"collection": "marked"})
    example = _failed(finished_run, "fail-1")
    assert client.post(_url("decide", other_run.pk, example.pk), {"decision": "accepted", "version": 1}).status_code == 404
    assert client.get(_url("image", other_run.pk, example.pk)).status_code == 404
    not_generation = JobFactory(kind="classification")
    assert client.get(_url("analysis", not_generation.pk)).status_code == 404
    assert client.get(_url("team_file", finished_run.pk, "settings.py")).status_code == 404
    assert client.get(f"/generation/runs/{finished_run.pk}/files/..%2F..%2Fsettings.py").status_code == 404


def test_staff_only_actions(client, finished_run, reviewer, admin_user):
    client.force_login(reviewer)
    assert client.post(_url("start"), {"collection": "marked"}).status_code == 403
    assert client.post(_url("rerun", finished_run.pk), {"temperature": "1.2"}).status_code == 403
    assert client.post(_url("export", finished_run.pk)).status_code == 403
    assert not Export.objects.exists() and not Job.objects.filter(parent=finished_run).exists()
    html = client.get(_url("analysis", finished_run.pk)).content.decode()
    assert "重跑未通过项</button>" not in html and 'action="/generation/runs/' not in html

    client.force_login(admin_user)
    response = client.post(_url("export", finished_run.pk))
    assert response.status_code == 302
    export = Export.objects.get()
    download = client.get(reverse("exports:file", args=[export.pk, "generation_openai.json"]))
    assert download.status_code == 200
    assert len(json.loads(b"".join(download.streaming_content))) == 3
    assert client.get(reverse("exports:file", args=[export.pk, "..%2F..%2Fx"])).status_code == 404
    response = client.post(_url("rerun", finished_run.pk), {"temperature": "1.2"})
    assert response.status_code == 302 and Job.objects.filter(parent=finished_run).count() == 1


def test_staff_starts_a_run_from_the_form(client, marked_sources, admin_user):
    client.force_login(admin_user)
    response = client.post(_url("start"), {"collection": "marked", "sample": "4", "multiple_choice_ratio": "0.5",
                                           "pass_threshold": "6", "temperature": "0.9", "seed": "1"})
    job = Job.objects.get(kind="generation")
    assert response.status_code == 302 and response["Location"] == _url("analysis", job.pk)
    assert job.items_total == 4 and job.params["pass_threshold"] == 6.0
    bad = client.post(_url("start"), {"collection": "marked", "multiple_choice_ratio": "3"}, follow=True)
    assert "multiple_choice_ratio" in bad.content.decode() and Job.objects.count() == 1


def test_model_output_and_imported_text_are_escaped(client, finished_run, reviewer):
    example = _failed(finished_run, "fail-1")
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    example.question = evil
    example.response = f"<look>{evil}</look><think>t</think><answer>a</answer>"
    example.failure_reasons = [evil]
    example.judge_raw = evil
    example.save()
    SourceItem.objects.filter(pk=example.source_item_id).update(wiki_title=evil, facts=[evil], attributes={"k": evil})
    client.force_login(reviewer)
    for url in (_url("failed", finished_run.pk) + "?status=all&reason=" + evil, _url("analysis", finished_run.pk)):
        html = client.get(url).content.decode()
        assert "<script>alert" not in html and "onerror=alert(1)>" not in html
        assert "&lt;script&gt;alert(" in html


def test_analysis_page_shows_the_numbers_and_chart_config(client, finished_run, reviewer):
    client.force_login(reviewer)
    response = client.get(_url("analysis", finished_run.pk))
    html = response.content.decode()
    assert 'id="generation-charts"' in html and 'data-chart="histogram"' in html
    assert "chart.umd.min.js" in html and "js/generation.js" in html
    data = response.context["chart_data"]
    assert sum(data["reasons"]["counts"]) >= 5
    assert sum(data["histogram"]["passed"]) == 3
    assert "category" in data["attributes"]
    assert "<script>" not in html.split('id="generation-charts"')[0].split("<main")[-1]


def test_page_query_counts_stay_flat(client, finished_run, reviewer, django_assert_max_num_queries):
    client.force_login(reviewer)
    with django_assert_max_num_queries(12):
        assert client.get(_url("runs")).status_code == 200
    with django_assert_max_num_queries(14):
        assert client.get(_url("failed", finished_run.pk), {"status": "all"}).status_code == 200
    with django_assert_max_num_queries(30):
        assert client.get(_url("analysis", finished_run.pk)).status_code == 200


def test_image_is_served_only_from_media_root(client, finished_run, reviewer, tmp_path):
    client.force_login(reviewer)
    example = _failed(finished_run, "fail-1")
    response = client.get(_url("image", finished_run.pk, example.pk))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"not an image")
    SourceItem.objects.filter(pk=example.source_item_id).update(image=str(outside))
    assert client.get(_url("image", finished_run.pk, example.pk)).status_code == 404


def test_any_signed_in_reviewer_may_overrule_without_an_assignment(client, finished_run):
    # Documented decision: generated examples belong to no category, so no assignment is needed.
    outsider = UserFactory(username="new-reviewer")
    client.force_login(outsider)
    example = _failed(finished_run, "fail-2")
    client.post(_url("decide", finished_run.pk, example.pk), {"decision": "rejected", "version": 1})
    assert GeneratedExample.objects.get(pk=example.pk).decision == ReviewDecision.REJECTED


def test_staff_imports_sources_from_the_browser(client, admin_user, reviewer):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = '{"id": "a", "wiki_title": "应县木塔"}\n{oops\n{"id": "b", "image": "x.png"}\n'.encode()
    client.force_login(reviewer)
    assert client.post(_url("import_sources"), {"file": SimpleUploadedFile("s.jsonl", data)}).status_code == 403
    client.force_login(admin_user)
    response = client.post(_url("import_sources"), {"file": SimpleUploadedFile("s.jsonl", data), "collection": "web"},
                           follow=True)
    html = response.content.decode()
    assert "新增 2" in html and "第 2 行" in html
    assert set(SourceItem.objects.filter(collection="web").values_list("external_id", flat=True)) == {"a", "b"}


def test_status_polling_reloads_the_page_once_the_run_has_finished(client, finished_run, reviewer):
    client.force_login(reviewer)
    url = _url("analysis", finished_run.pk) + "?partial=run-status"
    response = client.get(url, HTTP_HX_REQUEST="true")
    assert response["HX-Refresh"] == "true"
    running = JobFactory(kind="generation", params={"collection": "marked"}, status="running")
    response = client.get(_url("analysis", running.pk) + "?partial=run-status", HTTP_HX_REQUEST="true")
    assert "HX-Refresh" not in response and 'hx-trigger="every 3s"' in response.content.decode()


def test_a_rejected_decision_answers_the_card_with_its_message(client, finished_run, reviewer):
    client.force_login(reviewer)
    example = _failed(finished_run, "no-answer-1")
    response = client.post(_url("decide", finished_run.pk, example.pk),
                           {"decision": "accepted", "version": example.version, "status": "all"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "不能原样接受" in response.content.decode() and 'id="review-card"' in response.content.decode()
    assert GeneratedExample.objects.get(pk=example.pk).decision == ReviewDecision.PENDING


def test_team_files_download_in_the_seed_format(client, finished_run, reviewer):
    client.force_login(reviewer)
    failed = client.get(_url("team_file", finished_run.pk, "failed_examples.jsonl"))
    lines = [json.loads(line) for line in b"".join(failed.streaming_content).decode().splitlines()]
    assert len(lines) == 5 and all("failure_reason" in line for line in lines)
    report = json.loads(client.get(_url("team_file", finished_run.pk, "pipeline_report.json")).content)
    assert report["pipeline_stats"]["valid_examples"] == 3 and report["pipeline_stats"]["failed_validation"] == 5
