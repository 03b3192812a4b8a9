"""Reviewer assist through the pages, the API and the CSV: why a sample is suspected, the 疑似标签错误
filter sorted by score (per class and across the dataset), drafted corrections shown with a diff,
accepted into a save that records where the correction came from, discarded, and started per class."""
import csv
import io

import pytest
from django.urls import reverse

from pipelines.models import Job, JobKind
from review.models import Cause, CorrectionDraft, Mode, Review
from review.services import review_save
from tests.factories import ReasoningFactory, SampleFactory

HTMX = {"HTTP_HX_REQUEST": "true"}
LABEL_DEF = "图片中显示商品颜色、规格选项"  # assigned_category: 商品分类选项
OTHER_DEF = "用户申请更换商品"               # unassigned_category: 换货


def suspect(category, other, external_id, *, modes=3, info=None, mode3_output=None):
    """A sample of `category` whose first `modes` answers name `other` (the rest name the label)."""
    sample = SampleFactory(label=category, external_id=external_id, image_info=info)
    for mode in (Mode.FREE, Mode.WITH_DEFINITIONS, Mode.LIMITED):
        named = other if mode <= modes else category
        output = mode3_output if mode == Mode.LIMITED and mode3_output else f"图片里是……\n类别：{named.name}"
        ReasoningFactory(sample=sample, mode=mode, predicted_category=named, output=output,
                         length=len("".join(output.split())))
    return sample


@pytest.fixture
def classes(assigned_category, unassigned_category):
    return assigned_category, unassigned_category


def test_the_sample_page_says_why_a_sample_is_suspected(reviewer_client, classes):
    label, other = classes
    sample = suspect(label, other, "s-1", info={"可见文字": ["申请更换商品"]})
    html = reviewer_client.get(reverse("review:sample", args=[sample.pk])).content.decode()
    card = html.split('id="label-suspicion"')[1].split("</section>")[0]
    assert "疑似标签错误：疑似度 1.00" in card and "证据指向“换货”" in card
    assert "模式1（自由推理）答：换货" in card and "模式3（给出定义、限字数）答：换货" in card
    assert "图片信息最接近“换货”的定义" in card
    assert "（指向“换货”的权重 5.00 − 指向标签的权重 0.00）÷ 5" in card

    clean = suspect(label, other, "s-2", modes=0)
    assert 'id="label-suspicion"' not in reviewer_client.get(reverse("review:sample", args=[clean.pk])).content.decode()


def test_the_suspect_filter_lists_unreviewed_suspects_most_suspect_first(reviewer_client, reviewer, classes):
    label, other = classes
    weak = suspect(label, other, "a-weak", modes=2)                                   # (2 − 1) / 5: not suspected
    middle = suspect(label, other, "b-middle", modes=3)                               # 3 / 5
    strong = suspect(label, other, "c-strong", modes=3, info={"可见文字": ["申请更换商品"]})  # 5 / 5
    done = suspect(label, other, "d-done", modes=3)
    review_save(sample=done, user=reviewer, cause=Cause.LABEL_WRONG, corrected_output="", label_error=True,
                suggested_label=other, note="", version=0)
    url = reverse("review:queue", args=[label.pk])
    response = reviewer_client.get(url, {"f": "suspect", "s": "id"})
    assert [s.external_id for s in response.context["page"].object_list] == ["c-strong", "b-middle"]
    assert dict((k, n) for k, _, n in response.context["filters"])["suspect"] == 2
    html = response.content.decode()
    assert 'data-key="l"' in html and "疑似 1.00 → 换货" in html
    # The sample page inside that filter walks the same order.
    page = reviewer_client.get(reverse("review:sample", args=[strong.pk]), {"f": "suspect", "s": "id"})
    assert page.context["position"].next_id == middle.pk and weak.pk not in (page.context["position"].next_id,)


def test_the_dataset_wide_list_and_csv(reviewer_client, admin_user, classes):
    from django.test import Client

    label, other = classes
    client = Client()
    mine = suspect(label, other, "m-1", modes=3)
    theirs = suspect(other, label, "t-1", modes=3, info={"可见文字": ["颜色", "规格选项"]})
    url = reverse("review:suspects", args=[label.dataset_id])
    html = reviewer_client.get(url).content.decode()
    assert "m-1" in html and "t-1" not in html  # a reviewer sees their classes first
    assert "t-1" in reviewer_client.get(url, {"all": "1"}).content.decode()
    client.force_login(admin_user)
    response = client.get(url)
    rows = response.context["rows"]
    assert [r.external_id for r in rows] == ["t-1", "m-1"]  # most suspect first, across classes
    assert f'href="/samples/{theirs.pk}/?f=suspect&amp;s=id"' in response.content.decode()
    body = b"".join(client.get(reverse("review:suspects_csv", args=[label.dataset_id])).streaming_content).decode()
    table = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert table[0][:5] == ["排名", "类别", "样本ID", "疑似度", "证据指向的类别"]
    assert [row[2] for row in table[1:]] == ["t-1", "m-1"] and table[1][3] == "1.00" and table[1][4] == "商品分类选项"
    assert mine.pk


def test_the_api_gives_each_sample_its_score(api_client_for, classes, reviewer):
    label, other = classes
    sample = suspect(label, other, "api-1", modes=2)
    data = api_client_for(reviewer).get(f"/api/samples/{sample.pk}/").json()
    assert data["label_suspicion"] == pytest.approx(0.2) and data["label_suspicion_class"] == "换货"
    listed = api_client_for(reviewer).get("/api/samples/").json()["results"]
    assert [s["label_suspicion"] for s in listed] == [pytest.approx(0.2)]


@pytest.fixture
def api_client_for():
    from rest_framework.test import APIClient

    def make(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


# --------------------------------------------------------------------------- drafted corrections
WRONG = "页面上是换货申请。\n类别：换货"
DRAFT = "页面上是颜色和尺码的规格选项。\n类别：商品分类选项"


def wrong_mode3(category, other, external_id):
    """A sample whose mode 2 is right and whose mode-3 output names the wrong class."""
    sample = suspect(category, other, external_id, modes=0)
    mode3 = sample.reasonings.get(mode=Mode.LIMITED)
    mode3.output, mode3.predicted_category, mode3.predicted_name, mode3.is_correct = WRONG, other, other.name, False
    mode3.save()
    return sample


def test_the_draft_is_shown_with_a_diff_and_one_key_to_accept_it(reviewer_client, classes):
    label, other = classes
    sample = wrong_mode3(label, other, "w-1")
    mode3 = sample.reasonings.get(mode=Mode.LIMITED)
    draft = CorrectionDraft.objects.create(sample=sample, text=DRAFT, mode3_version=mode3.version, model_name="qwen-vl")
    html = reviewer_client.get(reverse("review:sample", args=[sample.pk])).content.decode()
    panel = html.split('id="correction-draft"')[1].split('id="review-form"')[0]
    diff = panel.split("data-draft-diff>")[1].split("</pre>")[0]
    assert diff.startswith("页面上是") and "<del>换货申请</del>" in diff and "<ins>" in diff
    assert "草稿通过检查" in panel and 'data-key="a"' in panel and 'data-key="d"' in panel
    assert f'data-draft-id="{draft.pk}"' in panel
    assert 'name="correction_draft" value=""' in html

    # Accepting puts the text in the box; saving it records the draft and whether it was changed.
    response = reviewer_client.post(reverse("review:save", args=[sample.pk]), {
        "cause": Cause.NONE, "corrected_output": DRAFT.replace("\n", "\r\n"), "note": "", "version": 0,
        "f": "all", "s": "id", "correction_draft": draft.pk}, **HTMX)
    assert response.status_code == 200
    draft.refresh_from_db()
    review = Review.objects.get(sample=sample)
    assert (draft.status, draft.review, draft.edited) == ("accepted", review, False)
    assert review.corrected_output == DRAFT
    page = reviewer_client.get(reverse("review:sample", args=[sample.pk])).content.decode()
    assert "当前的修正来自这份草稿（未修改）" in page and f'name="correction_draft" value="{draft.pk}"' in page
    assert "来自修正草稿" in page  # the edit history says so


def test_a_failing_draft_cannot_be_accepted_with_one_key(reviewer_client, classes):
    label, other = classes
    sample = wrong_mode3(label, other, "w-2")
    mode3 = sample.reasonings.get(mode=Mode.LIMITED)
    CorrectionDraft.objects.create(sample=sample, text="页面上是换货。\n类别：换货", mode3_version=mode3.version)
    html = reviewer_client.get(reverse("review:sample", args=[sample.pk])).content.decode()
    panel = html.split('id="correction-draft"')[1].split('id="review-form"')[0]
    assert "草稿未通过检查" in panel and "类别写的是“换货”，应为“商品分类选项”" in panel
    assert 'data-key="a"' not in panel and "data-draft-accept" not in panel


def test_discarding_a_draft_swaps_the_panel_and_is_refused_to_others(reviewer_client, other_reviewer, classes):
    from django.test import Client

    label, other = classes
    sample = wrong_mode3(label, other, "w-3")
    mode3 = sample.reasonings.get(mode=Mode.LIMITED)
    draft = CorrectionDraft.objects.create(sample=sample, text=DRAFT, mode3_version=mode3.version)
    client = Client()
    client.force_login(other_reviewer)
    refused = client.post(reverse("review:draft_discard", args=[draft.pk]), **HTMX)
    assert refused.status_code == 403
    response = reviewer_client.post(reverse("review:draft_discard", args=[draft.pk]), **HTMX)
    assert response.status_code == 200 and "已丢弃这份修正草稿" in response.content.decode()
    assert b"<html" not in response.content and b'id="correction-draft"' in response.content
    draft.refresh_from_db()
    assert draft.status == "discarded"


def test_the_class_page_starts_a_drafting_job_for_its_reviewer_or_staff(reviewer_client, other_reviewer, classes):
    from django.test import Client

    label, other = classes
    client = Client()
    wrong_mode3(label, other, "w-4")
    queue = reviewer_client.get(reverse("review:queue", args=[label.pk])).content.decode()
    assert reverse("review:draft_corrections", args=[label.pk]) in queue
    client.force_login(other_reviewer)
    assert client.post(reverse("review:draft_corrections", args=[label.pk])).status_code == 403
    response = reviewer_client.post(reverse("review:draft_corrections", args=[label.pk]))
    job = Job.objects.get(kind=JobKind.CORRECTION_DRAFT)
    assert response.status_code == 302 and response["Location"] == reverse("jobs:detail", args=[job.pk])
    assert job.items_total == 1 and job.params["categories"] == [label.name]
    assert "修正草稿" in reviewer_client.get(response["Location"]).content.decode()  # the job's own page
    # Nothing (more) to draft: a message on the class page, no job.
    again = reviewer_client.post(reverse("review:draft_corrections", args=[label.pk]), follow=True)
    assert "没有需要起草修正的样本" in again.content.decode() and Job.objects.count() == 1


def test_the_next_samples_image_is_preloaded_through_a_redirect(reviewer_client, classes):
    label, other = classes
    first = suspect(label, other, "i-1", modes=0)
    second = suspect(label, other, "i-2", modes=0)
    second.image = "datasets/1/i-2.png"
    second.save()
    html = reviewer_client.get(reverse("review:sample", args=[first.pk]), {"f": "all", "s": "id"}).content.decode()
    assert f'data-next-image="{reverse("review:sample_image", args=[second.pk])}"' in html
    response = reviewer_client.get(reverse("review:sample_image", args=[second.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("review:image", args=[second.image])
    assert reviewer_client.get(reverse("review:sample_image", args=[first.pk])).status_code == 204  # no image
    assert reviewer_client.get(reverse("review:sample_image", args=[99999])).status_code == 404
