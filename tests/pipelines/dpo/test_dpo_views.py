"""The DPO pages through the test client: permissions, preview, report, review actions, escaping, export."""
import json

import pytest
from django.urls import reverse

from pipelines.dpo import checks as pair_checks
from pipelines.models import Export, Job, JobKind, PreferencePair, ReviewDecision
from tests.factories import UserFactory
from tests.pipelines.dpo.data import SEED_REJECT

pytestmark = pytest.mark.django_db


def _pair(job, number=1):
    return PreferencePair.objects.get(job=job, key=f"feedback:{number}")


def test_every_page_sends_anonymous_users_to_the_login(client, dpo_job):
    pair = _pair(dpo_job)
    for url in (reverse("dpo:jobs"), reverse("dpo:new"), reverse("dpo:job", args=[dpo_job.pk]),
                reverse("dpo:pairs", args=[dpo_job.pk]), reverse("dpo:pair", args=[dpo_job.pk, pair.pk])):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    response = client.post(reverse("dpo:pair_review", args=[dpo_job.pk, pair.pk]), {"action": "accept", "version": 1})
    assert response.status_code == 302 and _pair(dpo_job).decision == ReviewDecision.PENDING


def test_non_staff_can_look_and_review_but_not_preview_start_or_export(reviewer_client, dpo_job, feedback_prompts):
    assert reviewer_client.get(reverse("dpo:jobs")).status_code == 200
    assert reviewer_client.get(reverse("dpo:job", args=[dpo_job.pk])).status_code == 200
    assert reviewer_client.get(reverse("dpo:new")).status_code == 403
    form = {"source": "feedback", "strategy": "truncate"}
    assert reviewer_client.post(reverse("dpo:new"), form).status_code == 403
    assert reviewer_client.post(reverse("dpo:start"), form).status_code == 403
    assert Job.objects.filter(kind=JobKind.DPO).count() == 1
    assert reviewer_client.post(reverse("dpo:export", args=[dpo_job.pk]), {"format": "trl_preference"}).status_code == 403
    assert not Export.objects.exists()


def test_the_report_says_plainly_that_most_rejects_are_off_topic_and_shows_model_and_template(staff_client, dpo_job):
    response = staff_client.get(reverse("dpo:job", args=[dpo_job.pk]))
    html = response.content.decode()
    assert "大多数 reject 与 prompt 无关" in html
    assert "checkpoint" in html and "[EOS]" in html and "temperature" in html
    assert "sft-small" in html and "http://127.0.0.1:8765/v1" in html and "{prompt}" in html
    # Ranked: the most frequent issue comes first (7 truncated — six trail off "……", one stops inside its
    # <think> — before 6 boilerplate).
    assert html.index("dpo-issue-truncated") < html.index("dpo-issue-boilerplate")


def test_preview_shows_the_first_pairs_with_endpoint_model_and_the_request_sent(staff_client, feedback_prompts, llm_simulator):
    form = {"source": "feedback", "strategy": "model", "base_url": llm_simulator.base_url, "model": "sft-small",
            "template": "{prompt}", "mode": "greedy", "preview_n": "3"}
    response = staff_client.post(reverse("dpo:new"), form, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="preview"')  # the partial only
    assert llm_simulator.base_url in html and "sft-small" in html
    assert "大多数 reject 与 prompt 无关" in html
    assert html.count("dpo-pair-card") == 3
    assert not PreferencePair.objects.exists()  # a preview writes nothing


def test_start_creates_the_job_with_the_previewed_parameters(staff_client, feedback_prompts):
    response = staff_client.post(reverse("dpo:start"), {"source": "feedback", "strategy": "truncate", "keep": "0.5"})
    job = Job.objects.get(kind=JobKind.DPO)
    assert response.status_code == 302 and response["Location"] == reverse("dpo:job", args=[job.pk])
    assert job.params["strategy"] == {"name": "truncate", "keep": 0.5}
    assert job.items_total == len(feedback_prompts)


def test_bad_parameters_get_a_clear_error(staff_client, feedback_prompts):
    response = staff_client.post(reverse("dpo:new"), {"source": "feedback", "strategy": "model", "template": "no placeholder"})
    assert response.status_code == 400 and "{prompt}" in response.content.decode()


def test_upload_is_size_checked(staff_client, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    big = SimpleUploadedFile("p.jsonl", b"x" * 2048)
    settings.UPLOAD_MAX_BYTES = 1024
    response = staff_client.post(reverse("dpo:new"), {"source": "file", "strategy": "truncate", "file": big})
    assert response.status_code == 400 and "文件过大" in response.content.decode()


@pytest.mark.parametrize(("action", "check"), [
    ("accept", lambda p: p.decision == ReviewDecision.ACCEPTED),
    ("discard", lambda p: p.decision == ReviewDecision.REJECTED),
    ("swap", lambda p: p.decision == ReviewDecision.EDITED and p.chosen == SEED_REJECT),
])
def test_a_decision_saves_and_shows_the_next_pair_in_one_step(reviewer_client, reviewer, dpo_job, action, check):
    """Issue #15: y / s / d decide and move on, as on the classification page."""
    pair, following = _pair(dpo_job, 1), _pair(dpo_job, 2)
    response = reviewer_client.post(reverse("dpo:pair_review", args=[dpo_job.pk, pair.pk]),
                                    {"action": action, "version": pair.version}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    pair.refresh_from_db()
    assert check(pair) and pair.version == 2 and pair.decided_by == reviewer
    html = response.content.decode()
    assert f'id="pair-{following.pk}"' in html and f'id="pair-{pair.pk}"' not in html
    assert response["HX-Push-Url"] == reverse("dpo:pair", args=[dpo_job.pk, following.pk])
    assert pair.key in html and "已进入下一条" in html  # the notice names the pair that was saved


def test_htmx_history_restore_gets_the_whole_page(reviewer_client, dpo_job):
    url = reverse("dpo:pair", args=[dpo_job.pk, _pair(dpo_job).pk])
    assert b"<html" not in reviewer_client.get(url, HTTP_HX_REQUEST="true").content
    response = reviewer_client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert b"<html" in response.content


def test_a_decision_keeps_the_filter_and_stops_at_the_last_pair(reviewer_client, dpo_job):
    flagged = list(PreferencePair.objects.filter(job=dpo_job).exclude(issues=[]).order_by("id"))
    last = flagged[-1]
    url = reverse("dpo:pair_review", args=[dpo_job.pk, flagged[-2].pk])
    response = reviewer_client.post(url, {"action": "accept", "version": 1, "issue": "flagged"}, HTTP_HX_REQUEST="true")
    assert response["HX-Push-Url"] == reverse("dpo:pair", args=[dpo_job.pk, last.pk]) + "?issue=flagged"
    response = reviewer_client.post(reverse("dpo:pair_review", args=[dpo_job.pk, last.pk]),
                                    {"action": "discard", "version": 1, "issue": "flagged"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert f'id="pair-{last.pk}"' in html and "最后一条" in html


def test_reset_stays_on_the_pair(reviewer_client, dpo_job):
    pair = _pair(dpo_job)
    url = reverse("dpo:pair_review", args=[dpo_job.pk, pair.pk])
    reviewer_client.post(url, {"action": "discard", "version": 1}, HTTP_HX_REQUEST="true")
    response = reviewer_client.post(url, {"action": "reset", "version": 2}, HTTP_HX_REQUEST="true")
    assert f'id="pair-{pair.pk}"' in response.content.decode()
    pair.refresh_from_db()
    assert pair.decision == ReviewDecision.PENDING


def test_without_htmx_a_decision_lands_on_the_next_pair_saying_what_was_saved(reviewer_client, dpo_job):
    pair = _pair(dpo_job)
    response = reviewer_client.post(reverse("dpo:pair_review", args=[dpo_job.pk, pair.pk]),
                                    {"action": "discard", "version": pair.version}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("dpo:pair", args=[dpo_job.pk, _pair(dpo_job, 2).pk])
    assert f"已丢弃 {pair.key}" in response.content.decode()


def _visible_text(html: str) -> str:
    import re

    html = re.sub(r"<(script|style|textarea)\b.*?</\1>", " ", html, flags=re.DOTALL)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_review_status_words_are_chinese_and_never_rejected(reviewer_client, staff_client, dpo_job):
    """Issue #15: "rejected" is DPO's own word for the worse answer; a discarded pair reads 已丢弃."""
    pair = _pair(dpo_job)
    reviewer_client.post(reverse("dpo:pair_review", args=[dpo_job.pk, pair.pk]), {"action": "discard", "version": 1})
    PreferencePair.objects.filter(pk=_pair(dpo_job, 2).pk).update(decision=ReviewDecision.ACCEPTED)
    import re

    pages = {
        "review": reviewer_client.get(reverse("dpo:pair", args=[dpo_job.pk, pair.pk])),
        "list": reviewer_client.get(reverse("dpo:pairs", args=[dpo_job.pk])),
        "job": staff_client.get(reverse("dpo:job", args=[dpo_job.pk])),
    }
    for name, response in pages.items():
        text = _visible_text(response.content.decode())
        assert "已丢弃" in text, name
        assert not re.search(r"\b(rejected|accepted|pending|edited)\b\s*\d", text), name  # raw decision values
        assert "拒绝" not in text, name
    assert "已丢弃 1" in _visible_text(pages["job"].content.decode())
    assert "已接受 1" in _visible_text(pages["job"].content.decode())


def test_a_passed_check_reads_as_passed(reviewer_client, dpo_job):
    clean = PreferencePair.objects.filter(job=dpo_job, issues=[]).first()
    html = reviewer_client.get(reverse("dpo:pair", args=[dpo_job.pk, clean.pk])).content.decode()
    text = _visible_text(html)
    assert "✓ off_topic" not in text and "✓ boilerplate" not in text
    assert text.count("通过") >= len(pair_checks.ISSUE_NAMES)
    flagged = _pair(dpo_job, 1)
    text = _visible_text(reviewer_client.get(reverse("dpo:pair", args=[dpo_job.pk, flagged.pk])).content.decode())
    assert "未通过" in text and "off_topic" in text


def test_editing_rechecks_the_pair(reviewer_client, dpo_job):
    pair = _pair(dpo_job)
    assert "off_topic" in pair.issues and "boilerplate" in pair.issues
    response = reviewer_client.post(reverse("dpo:pair_review", args=[dpo_job.pk, pair.pk]), {
        "action": "edit", "version": pair.version, "chosen": pair.chosen, "rejected": "苹果、香蕉、橘子",
    })
    assert response.status_code == 302
    pair.refresh_from_db()
    assert pair.rejected == "苹果、香蕉、橘子" and pair.issues == [] and pair.decision == ReviewDecision.EDITED


def test_a_stale_version_is_refused_with_409_and_nothing_is_lost(reviewer_client, dpo_job):
    pair = _pair(dpo_job)
    url = reverse("dpo:pair_review", args=[dpo_job.pk, pair.pk])
    assert reviewer_client.post(url, {"action": "accept", "version": 1}).status_code == 302
    response = reviewer_client.post(url, {"action": "discard", "version": 1}, HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    assert "已被其他人修改" in response.content.decode()
    pair.refresh_from_db()
    assert pair.decision == ReviewDecision.ACCEPTED and pair.version == 2


def test_a_pair_of_another_job_is_404(reviewer_client, dpo_job):
    other = Job.objects.create(kind=JobKind.DPO, params=dpo_job.params)
    pair = _pair(dpo_job)
    assert reviewer_client.get(reverse("dpo:pair", args=[other.pk, pair.pk])).status_code == 404
    assert reviewer_client.post(reverse("dpo:pair_review", args=[other.pk, pair.pk]), {"action": "accept", "version": 1}).status_code == 404
    classification = Job.objects.create(kind=JobKind.CLASSIFICATION)
    assert reviewer_client.get(reverse("dpo:job", args=[classification.pk])).status_code == 404


def test_model_output_is_escaped_everywhere(reviewer_client, dpo_job):
    pair = _pair(dpo_job)
    PreferencePair.objects.filter(pk=pair.pk).update(rejected='<script>alert("x")</script><img src=x onerror=alert(1)>')
    for url in (reverse("dpo:pair", args=[dpo_job.pk, pair.pk]), reverse("dpo:pairs", args=[dpo_job.pk])):
        html = reviewer_client.get(url).content.decode()
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert" in html


def test_the_pair_pages_have_flat_query_counts(reviewer_client, dpo_job, django_assert_max_num_queries):
    for number in range(9, 60):
        PreferencePair.objects.create(job=dpo_job, key=f"feedback:{number}", source="feedback", prompt="问题",
                                      chosen="回答", rejected="较差的回答", issues=["truncated"])
    with django_assert_max_num_queries(10):
        assert reviewer_client.get(reverse("dpo:pairs", args=[dpo_job.pk]) + "?issue=flagged").status_code == 200
    pair = _pair(dpo_job)
    with django_assert_max_num_queries(10):
        assert reviewer_client.get(reverse("dpo:pair", args=[dpo_job.pk, pair.pk]) + "?issue=flagged").status_code == 200
    with django_assert_max_num_queries(10):
        assert reviewer_client.get(reverse("dpo:jobs")).status_code == 200


def test_filters_select_pairs_by_issue_and_review_keeps_the_filter(reviewer_client, dpo_job):
    html = reviewer_client.get(reverse("dpo:pairs", args=[dpo_job.pk]) + "?issue=off_topic").content.decode()
    assert html.count("dpo-decision-pending") == sum("off_topic" in p.issues for p in PreferencePair.objects.filter(job=dpo_job))
    first = PreferencePair.objects.filter(job=dpo_job).order_by("id").first()
    page = reviewer_client.get(reverse("dpo:pair", args=[dpo_job.pk, first.pk]) + "?issue=off_topic").content.decode()
    assert 'data-key="j"' in page and "?issue=off_topic" in page


def test_export_from_the_job_page_writes_the_file_and_dataset_info(staff_client, dpo_job):
    PreferencePair.objects.filter(job=dpo_job, key="feedback:7").update(decision=ReviewDecision.REJECTED)
    response = staff_client.post(reverse("dpo:export", args=[dpo_job.pk]), {"format": "alpaca_preference", "include_flagged": "1"})
    assert response.status_code == 302
    export = Export.objects.get(kind="dpo")
    assert export.row_count == 7
    data_name = f"dpo_job{dpo_job.pk}_alpaca_preference.json"
    page = staff_client.get(reverse("dpo:job", args=[dpo_job.pk])).content.decode()
    assert reverse("exports:file", args=[export.pk, data_name]) in page
    data = staff_client.get(reverse("exports:file", args=[export.pk, data_name]))
    rows = json.loads(b"".join(data.streaming_content))
    assert len(rows) == 7 and set(rows[0]) == {"instruction", "input", "chosen", "rejected"}
    info = json.loads(b"".join(staff_client.get(reverse("exports:file", args=[export.pk, "dataset_info.json"])).streaming_content))
    assert info[f"dpo_job{dpo_job.pk}_alpaca_preference"]["ranking"] is True
    assert staff_client.get(reverse("exports:file", args=[export.pk, "secret"])).status_code == 404
    other = UserFactory(username="plain")
    staff_client.force_login(other)
    assert staff_client.get(reverse("exports:file", args=[export.pk, data_name])).status_code == 404


def test_the_status_poll_reloads_the_page_when_the_job_ends(reviewer_client, dpo_job):
    url = reverse("dpo:job", args=[dpo_job.pk]) + "?partial=status"
    Job.objects.filter(pk=dpo_job.pk).update(status="running")
    running = reviewer_client.get(url, HTTP_HX_REQUEST="true")
    assert "HX-Refresh" not in running and 'hx-trigger="every 2s"' in running.content.decode()
    Job.objects.filter(pk=dpo_job.pk).update(status="done")
    assert reviewer_client.get(url, HTTP_HX_REQUEST="true")["HX-Refresh"] == "true"
