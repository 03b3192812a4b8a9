"""What the reviewer sees is what gets exported: "keep" only keeps what is keepable, corrections are
checked before they are stored, a label error names a class (or says 不确定), and the export never
holds a row that fails the checks. Each flow ends in the exported file, read back."""
import json

import pytest
from django.urls import reverse

from review.exports import trainset_export
from review.models import Cause, Mode, Review
from tests.factories import CategoryFactory, ReasoningFactory, SampleFactory

HTMX = {"HTTP_HX_REQUEST": "true"}
GOOD_OUTPUT = "图片显示颜色和尺码选项。\n类别：商品分类选项"


@pytest.fixture
def other_category(assigned_category):
    return CategoryFactory(dataset=assigned_category.dataset, name="换货", definition="用户申请更换商品")


def make(category, external_id, *, mode2=None, mode3=GOOD_OUTPUT, mode3_predicted="label"):
    """A sample of `category`; mode 2 predicts `mode2` (default: the label; None: unparseable)."""
    sample = SampleFactory(label=category, external_id=external_id)
    if mode2 == "unparsed":
        ReasoningFactory(sample=sample, mode=Mode.WITH_DEFINITIONS, predicted_category=None, predicted_name="",
                         is_correct=None, output="看不出来")
    else:
        predicted2 = mode2 or category
        ReasoningFactory(sample=sample, mode=Mode.WITH_DEFINITIONS, predicted_category=predicted2,
                         is_correct=predicted2.pk == category.pk)
    if mode3 is not None:
        predicted3 = category if mode3_predicted == "label" else mode3_predicted
        ReasoningFactory(sample=sample, mode=Mode.LIMITED, output=mode3, predicted_category=predicted3,
                         predicted_name=predicted3.name if predicted3 else "",
                         is_correct=None if predicted3 is None else predicted3.pk == category.pk,
                         length=len("".join(mode3.split())))
    return sample


def post(client, sample, **data):
    review = Review.objects.filter(sample=sample).first()
    values = {"cause": "", "corrected_output": sample.reasonings.get(mode=Mode.LIMITED).output
              if sample.reasonings.filter(mode=Mode.LIMITED).exists() else "",
              "note": "", "version": review.version if review else 0, "f": "all", "s": "id"}
    values.update(data)
    return client.post(reverse("review:save", args=[sample.pk]), values, **HTMX)


@pytest.fixture(autouse=True)
def anchor(assigned_category):
    """A keepable sample, so every export has a row (an empty export is refused)."""
    return make(assigned_category, "anchor")


def export_rows(dataset, tmp_path):
    """The exported rows (id → response) besides the anchor's, and the export's report."""
    out = tmp_path / "train.jsonl"
    export = trainset_export(dataset=dataset, fmt="jsonl", path=out)
    rows = {row["id"]: row["response"] for row in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert rows.pop("anchor") == GOOD_OUTPUT
    return rows, export.report


# --------------------------------------------------------------------------- y = keep
def test_keep_is_refused_when_mode2_is_wrong_and_says_a_cause_is_needed(reviewer_client, assigned_category,
                                                                        other_category):
    sample = make(assigned_category, "m2-wrong", mode2=other_category)
    response = post(reviewer_client, sample, action="keep")
    assert response.status_code == 400
    assert "模式2推理错误" in response.content.decode()
    assert not Review.objects.filter(sample=sample, cause=Cause.NONE).exists()


@pytest.mark.parametrize("mode3, predicted", [
    (GOOD_OUTPUT.replace("商品分类选项", "换货"), "other"),       # names another class
    ("很长的分析，" * 40 + "\n类别：商品分类选项", "label"),        # over the limit
    ("看不出是什么", None),                                           # no class line
])
def test_keep_is_refused_when_the_export_would_leave_mode3_out(reviewer_client, assigned_category, other_category,
                                                               tmp_path, mode3, predicted):
    sample = make(assigned_category, "m3-bad", mode3=mode3,
                  mode3_predicted={"label": "label", "other": other_category, None: None}[predicted])
    response = post(reviewer_client, sample, action="keep")
    assert response.status_code == 400
    assert "请修正模式3输出" in response.content.decode()
    assert not Review.objects.filter(sample=sample).exists()
    rows, report = export_rows(assigned_category.dataset, tmp_path)
    assert "m3-bad" not in rows and report["pending"] == 1


def test_keep_with_an_edited_box_is_refused_and_the_edit_is_kept_on_the_page(reviewer_client, assigned_category,
                                                                               tmp_path):
    sample = make(assigned_category, "edited")
    edited = "我改过的输出。\n类别：商品分类选项"
    response = post(reviewer_client, sample, action="keep", corrected_output=edited)
    assert response.status_code == 400
    html = response.content.decode()
    assert "你修改了模式3输出" in html and "我改过的输出。" in html
    assert not Review.objects.filter(sample=sample).exists()


def test_keep_on_a_keepable_sample_exports_the_model_output(reviewer_client, assigned_category, tmp_path):
    sample = make(assigned_category, "fine")
    assert post(reviewer_client, sample, action="keep").status_code == 200
    assert Review.objects.get(sample=sample).cause == Cause.NONE
    rows, _ = export_rows(assigned_category.dataset, tmp_path)
    assert rows == {"fine": GOOD_OUTPUT}


def test_cause_none_is_refused_on_a_mode2_error(reviewer_client, assigned_category):
    sample = make(assigned_category, "unparsed-m2", mode2="unparsed")
    response = post(reviewer_client, sample, cause=Cause.NONE)
    assert response.status_code == 400
    assert not Review.objects.filter(sample=sample).exists()


# --------------------------------------------------------------------------- corrections are checked
@pytest.mark.parametrize("correction, problem", [
    ("用户在申请换货。\n类别：换货", "应为“商品分类选项”"),
    ("颜色尺码选项，" * 30 + "\n类别：商品分类选项", "超过 100 字"),
    ("颜色和尺码选项", "读不出类别"),
])
def test_a_failing_correction_is_refused_and_never_exported(reviewer_client, assigned_category, other_category,
                                                            tmp_path, correction, problem):
    sample = make(assigned_category, "fix-me", mode3=GOOD_OUTPUT.replace("商品分类选项", "换货"),
                  mode3_predicted=other_category)
    response = post(reviewer_client, sample, cause=Cause.NONE, corrected_output=correction)
    assert response.status_code == 400
    assert problem in response.content.decode()
    assert not Review.objects.filter(sample=sample).exists()

    # An explicit override with a note stores it, but the export still leaves it out and says why.
    response = post(reviewer_client, sample, cause=Cause.NONE, corrected_output=correction,
                    correction_override="1", note="模板要求如此")
    assert response.status_code == 200
    assert Review.objects.get(sample=sample).corrected_output == correction.strip()
    rows, report = export_rows(assigned_category.dataset, tmp_path)
    assert rows == {}
    assert report["pending_by_reason"] == {"correction_failed": 1}


def test_an_override_needs_a_note(reviewer_client, assigned_category, other_category):
    sample = make(assigned_category, "fix-me", mode3_predicted=other_category,
                  mode3=GOOD_OUTPUT.replace("商品分类选项", "换货"))
    response = post(reviewer_client, sample, cause=Cause.NONE, corrected_output="颜色和尺码选项",
                    correction_override="1", note="")
    assert response.status_code == 400
    assert not Review.objects.filter(sample=sample).exists()


def test_a_checked_correction_is_exported(reviewer_client, assigned_category, other_category, tmp_path):
    sample = make(assigned_category, "fix-me", mode3_predicted=other_category,
                  mode3=GOOD_OUTPUT.replace("商品分类选项", "换货"))
    correction = "页面是颜色、尺码选择。\n类别：商品分类选项"
    assert post(reviewer_client, sample, cause=Cause.NONE, corrected_output=correction).status_code == 200
    rows, report = export_rows(assigned_category.dataset, tmp_path)
    assert rows == {"fix-me": correction} and report["corrected"] == 1


def test_correction_check_endpoint_reports_problems_live(reviewer_client, assigned_category, other_category):
    sample = make(assigned_category, "live")
    url = reverse("review:check_correction", args=[sample.pk])
    html = reviewer_client.post(url, {"corrected_output": "申请换货\n类别：换货"}, **HTMX).content.decode()
    assert "应为“商品分类选项”" in html
    html = reviewer_client.post(url, {"corrected_output": "页面是颜色、尺码选择。\n类别：商品分类选项"}, **HTMX).content.decode()
    assert "通过检查" in html


# --------------------------------------------------------------------------- label errors
def test_a_label_error_needs_a_suggestion_or_an_explicit_uncertain(reviewer_client, assigned_category,
                                                                   other_category, tmp_path):
    sample = make(assigned_category, "mislabelled", mode2=other_category)
    response = post(reviewer_client, sample, cause=Cause.DEFINITIONS_OVERLAP, label_error="1")
    assert response.status_code == 400
    assert "建议类别" in response.content.decode()

    response = post(reviewer_client, sample, cause=Cause.DEFINITIONS_OVERLAP, label_error="1",
                    suggested_label_name="不确定")
    assert response.status_code == 200
    review = Review.objects.get(sample=sample)
    assert review.label_error and review.suggestion_uncertain and review.suggested_label is None

    response = post(reviewer_client, sample, cause=Cause.LABEL_WRONG, label_error="1",
                    suggested_label_name="换货")
    assert response.status_code == 200
    review.refresh_from_db()
    assert review.suggested_label == other_category and not review.suggestion_uncertain
    rows, report = export_rows(assigned_category.dataset, tmp_path)
    assert rows == {} and report["label_errors"] == {"商品分类选项": [{"id": "mislabelled", "suggested": "换货"}]}


# --------------------------------------------------------------------------- 分类分析.md
def test_analysis_markdown_gives_the_reviewers_note_as_the_reason_and_escapes_names(reviewer, assigned_category,
                                                                                    other_category):
    from review.exports import dataset_analysis_markdown
    from review.services import review_save

    other_category.name = "<b>换货</b>"
    other_category.save()
    sample = make(assigned_category, "m2-wrong", mode2=other_category)
    review_save(sample=sample, user=reviewer, cause=Cause.DEFINITIONS_OVERLAP, corrected_output="", label_error=False,
                suggested_label=None, note="规格弹窗和换货页都有“选择尺码”", version=0)
    text = "".join(dataset_analysis_markdown(dataset=assigned_category.dataset))
    assert ('id: m2-wrong，推理结果："&lt;b&gt;换货&lt;/b&gt;"，出错原因：规格弹窗和换货页都有“选择尺码”（属于(1)）'
            in text)
    assert "<b>" not in text


def test_a_browser_posted_textarea_with_crlf_line_breaks_is_the_unchanged_model_output(reviewer_client,
                                                                                      assigned_category, tmp_path):
    # Browsers send a textarea's line breaks as CRLF: an untouched box is still "keep", never an edit.
    sample = make(assigned_category, "crlf")
    assert post(reviewer_client, sample, action="keep", corrected_output=GOOD_OUTPUT.replace("\n", "\r\n")).status_code == 200
    assert Review.objects.get(sample=sample).corrected_output == ""
    correction = "页面是颜色、尺码选择。\r\n类别：商品分类选项"
    other = make(assigned_category, "crlf-2", mode3_predicted=None, mode3="看不出")
    assert post(reviewer_client, other, cause=Cause.NONE, corrected_output=correction).status_code == 200
    rows, _ = export_rows(assigned_category.dataset, tmp_path)
    assert rows == {"crlf": GOOD_OUTPUT, "crlf-2": correction.replace("\r\n", "\n")}
