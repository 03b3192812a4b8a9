"""Drafted corrections: the job drafts for exactly the samples whose mode-3 output cannot be exported
as it is, shows the model same-class examples, stores what the simulated model answers (failing
drafts too, as failed), and a draft reaches the training set only through a reviewer's save, which
records that it came from the draft and whether it was changed."""
import json
from io import StringIO

import pytest
from django.core.management import call_command

from core.errors import ApplicationError
from pipelines.jobs.services import job_create, run_job_inline
from pipelines.models import JobKind
from review.demo_catalog import DEMO_CATEGORIES
from review.drafts import draft_discard, draft_for
from review.exports import trainset_export
from review.jobs.correction_drafts import class_examples, drafted_sample_ids, render_draft_prompt
from review.models import Cause, CorrectionDraft, Mode, Review, ReviewEdit
from review.services import review_save
from tests.factories import AssignmentFactory, CategoryFactory, DatasetFactory, ReasoningFactory, SampleFactory
from tests.pipelines.jobs.scenes import draw_sample_image

LABEL, OTHER = DEMO_CATEGORIES[13], DEMO_CATEGORIES[12]  # 换货页面, 退货页面
GOOD = "图片为“申请换货”页面，显示换货原因和新规格，符合换货页面的定义。\n类别：换货页面"
LONG = "图片里有很多内容，" * 14 + "\n类别：换货页面"
WRONG = "页面上有寄回地址和退货单号，应为退货。\n类别：退货页面"


@pytest.fixture
def exchange_class(db, reviewer):
    dataset = DatasetFactory(name="drafts")
    label = CategoryFactory(dataset=dataset, name=LABEL.name, definition=LABEL.definition, position=0)
    other = CategoryFactory(dataset=dataset, name=OTHER.name, definition=OTHER.definition, position=1)
    AssignmentFactory(reviewer=reviewer, category=label)
    samples = {}

    def add(key, mode3, *, shows=13, correct=True, review=None):
        external_id = f"d-{len(samples):02d}-{key}"
        image = draw_sample_image(f"drafts/{external_id}.png", shows, seed=len(samples))
        sample = SampleFactory(dataset=dataset, label=label, external_id=external_id, image=image)
        ReasoningFactory(sample=sample, mode=Mode.WITH_DEFINITIONS)
        ReasoningFactory(sample=sample, mode=Mode.LIMITED, output=mode3, predicted_category=label if correct else other,
                         length=len("".join(mode3.split())))
        samples[key] = sample
        return sample

    for i in range(4):
        add(f"good{i}", GOOD.replace("新规格", f"新规格{i}"))
    for i in range(14):
        add(f"wrong{i}", WRONG, correct=False)
    add("long", LONG)
    add("planted", WRONG, shows=12, correct=False)   # the image really shows 退货页面
    corrected = add("corrected", WRONG, correct=False)
    review_save(sample=corrected, user=reviewer, cause=Cause.NONE, corrected_output="人工修正的输出。\n类别：换货页面",
                label_error=False, suggested_label=None, note="", version=0)
    flagged = add("flagged", WRONG, correct=False)
    review_save(sample=flagged, user=reviewer, cause=Cause.NONE, corrected_output="", label_error=True,
                suggested_label=other, note="", version=0)
    return dataset, label, samples


def test_the_job_drafts_for_wrong_and_too_long_outputs_only(exchange_class, llm_simulator, settings, reviewer):
    job_viewer = reviewer
    dataset, label, samples = exchange_class
    wanted = {s.pk for k, s in samples.items() if k.startswith("wrong") or k in ("long", "planted")}
    assert set(drafted_sample_ids(dataset_id=dataset.pk)) == wanted

    job = run_job_inline(job_create(kind=JobKind.CORRECTION_DRAFT, params={"dataset": dataset.name}, enqueue=False))
    assert (job.status, job.items_total, job.items_failed) == ("done", len(wanted), 0)
    drafts = {d.sample_id: d for d in CorrectionDraft.objects.filter(job=job)}
    assert set(drafts) == wanted

    # Examples: correct, within-limit outputs of the same class — the reviewer's correction first.
    for draft in drafts.values():
        assert draft.examples == [samples["corrected"].external_id, samples["good0"].external_id,
                                  samples["good1"].external_id]
    # The simulated model answers in the format, and some drafts fail the checks on purpose.
    passed = [d for d in drafts.values() if not d.problems]
    failed = [d for d in drafts.values() if d.problems]
    assert passed and failed
    for draft in passed:
        assert draft.text.endswith("类别：换货页面") and draft.length <= settings.TRAINSET_MAX_LENGTH
    # The image of the planted label error shows 退货页面: the draft names it and fails.
    assert "退货页面" in drafts[samples["planted"].pk].problems[0]
    assert job.report["drafts"] == len(wanted)
    assert job.report["passed_checks"] == len(passed) and job.report["failed_checks"] == len(failed)
    from django.test import Client
    from django.urls import reverse

    page = Client()
    page.force_login(job_viewer)
    table = page.get(reverse("jobs:detail", args=[job.pk])).content.decode().split('id="job-drafts"')[1].split("</table>")[0]
    assert f'<td class="num">{len(passed)}</td>' in table and f'<td class="num">{len(failed)}</td>' in table

    # Drafts are suggestions: the export still leaves those samples out.
    export = trainset_export(dataset=dataset, fmt="jsonl", path=settings.MEDIA_ROOT / "train.jsonl")
    exported = {json.loads(line)["id"] for line in (settings.MEDIA_ROOT / "train.jsonl").read_text().splitlines()}
    assert not exported & {samples[k].external_id for k in samples if k.startswith("wrong")}
    assert export.report["pending"] >= len(wanted)

    # Running it again drafts nothing new: every sample has a draft waiting.
    with pytest.raises(ApplicationError, match="没有需要起草修正的样本"):
        job_create(kind=JobKind.CORRECTION_DRAFT, params={"dataset": dataset.name}, enqueue=False)
    again = run_job_inline(job_create(kind=JobKind.CORRECTION_DRAFT, enqueue=False,
                                      params={"dataset": dataset.name, "redraft": True, "examples": 2}))
    assert again.items_done == len(wanted)
    sample_id = samples["wrong0"].pk
    assert list(CorrectionDraft.objects.filter(sample_id=sample_id).values_list("status", flat=True)) == [
        "offered", "superseded"]


def test_the_prompt_holds_label_definition_limit_and_examples():
    prompt = render_draft_prompt("类别是“{label}”。定义：{definition}。不超过{limit}字。\n{examples}",
                                 label="换货页面", definition="换货的申请", limit=80, examples=["甲\n类别：换货页面", "乙"])
    assert prompt == "类别是“换货页面”。定义：换货的申请。不超过80字。\n示例1：\n甲\n类别：换货页面\n\n示例2：\n乙"


def test_examples_leave_out_wrong_long_and_flagged_outputs(exchange_class):
    dataset, label, samples = exchange_class
    found = [external_id for _, external_id, _ in class_examples(category_id=label.pk, limit=100, count=10)]
    assert found == [samples["corrected"].external_id] + [samples[f"good{i}"].external_id for i in range(4)]


def test_a_saved_correction_records_that_it_came_from_a_draft_and_whether_it_was_changed(exchange_class, reviewer):
    dataset, label, samples = exchange_class
    sample = samples["wrong0"]
    draft = CorrectionDraft.objects.create(sample=sample, text="图片中可以看到换货原因。\n类别：换货页面", mode3_version=1)
    view = draft_for(sample=sample, mode3=sample.reasonings.get(mode=Mode.LIMITED), review=None)
    assert view.offerable and view.draft == draft
    assert ("insert", "图片中可以看到换货原因。\n类别：换货页面") not in view.segments  # a diff, not the whole text

    review = review_save(sample=sample, user=reviewer, cause=Cause.NONE, corrected_output=draft.text + "\r\n",
                         label_error=False, suggested_label=None, note="", version=0, correction_draft=draft)
    draft.refresh_from_db()
    assert (draft.status, draft.review, draft.edited, draft.decided_by) == ("accepted", review, False, reviewer)
    assert review.edits.get().after["correction_draft"] == {"id": draft.pk, "edited": False}

    # Changing the text later keeps the provenance and says it was changed.
    review = review_save(sample=sample, user=reviewer, cause=Cause.NONE, version=1, label_error=False,
                         suggested_label=None, note="", correction_draft=draft,
                         corrected_output="图片中可以看到换货原因和新规格。\n类别：换货页面")
    assert ReviewEdit.objects.get(review=review, version=2).after["correction_draft"] == {"id": draft.pk, "edited": True}
    # Restoring the model's output: the draft is no longer used and is offered again.
    review_save(sample=sample, user=reviewer, cause=Cause.MODEL_WEAK, version=2, label_error=False,
                suggested_label=None, note="", corrected_output="")
    draft.refresh_from_db()
    assert (draft.status, draft.review) == ("offered", None)

    with pytest.raises(ApplicationError, match="不属于"):
        review_save(sample=samples["wrong1"], user=reviewer, cause=Cause.NONE, corrected_output=draft.text,
                    label_error=False, suggested_label=None, note="", version=0, correction_draft=draft)


def test_a_failing_draft_is_shown_as_failed_and_a_discarded_one_is_gone(exchange_class, reviewer, other_reviewer,
                                                                        settings):
    dataset, label, samples = exchange_class
    sample = samples["wrong2"]
    mode3 = sample.reasonings.get(mode=Mode.LIMITED)
    draft = CorrectionDraft.objects.create(sample=sample, text="短。\n类别：换货页面", mode3_version=mode3.version)
    settings.TRAINSET_MAX_LENGTH = 3  # the checks read the limit live
    view = draft_for(sample=sample, mode3=mode3, review=None)
    assert not view.offerable and "超过 3 字" in view.check.problems[0]
    settings.TRAINSET_MAX_LENGTH = 100

    with pytest.raises(ApplicationError) as refused:
        draft_discard(draft=draft, user=other_reviewer)
    assert refused.value.code == "forbidden"
    draft_discard(draft=draft, user=reviewer)
    assert draft_for(sample=sample, mode3=mode3, review=None) is None
    # A draft for an older mode-3 version is not shown either.
    CorrectionDraft.objects.create(sample=sample, text=GOOD, mode3_version=mode3.version - 1 if mode3.version > 1 else 99)
    assert draft_for(sample=sample, mode3=mode3, review=Review.objects.filter(sample=sample).first()) is None


def test_draft_corrections_command_runs_the_job(exchange_class, llm_simulator):
    dataset, label, samples = exchange_class
    out = StringIO()
    call_command("draft_corrections", "--dataset", dataset.name, "--category", label.name, "--inline", stdout=out)
    assert "修正草稿" in out.getvalue() and "完成" in out.getvalue()
    assert CorrectionDraft.objects.filter(sample__dataset=dataset).count() == 16
