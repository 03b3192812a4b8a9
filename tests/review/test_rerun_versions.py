"""A model re-run never overwrites reviewed work: its output waits as a new version, the review keeps
pointing at the version it judged, analysis and export use that version until the reviewer accepts
the new one, and the job report gives accuracy before and after."""
import json

import pytest
from django.urls import reverse

from pipelines.jobs.services import job_create, run_job_inline
from review.exports import trainset_export
from review.models import Cause, Reasoning, ReasoningVersion, Review
from review.rules import sample_status
from review.services import review_save
from tests.factories import AssignmentFactory
from tests.pipelines.jobs.scenes import make_scene_dataset

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
OLD = "推理：旧模型看到了颜色和尺码选项。\n类别：{name}"


def exported(dataset, tmp_path):
    out = tmp_path / f"train-{len(list(tmp_path.glob('train-*')))}.jsonl"  # exports never overwrite
    trainset_export(dataset=dataset, fmt="jsonl", path=out)
    return {row["id"]: row["response"] for row in map(json.loads, out.read_text(encoding="utf-8").splitlines())}


@pytest.fixture
def first_run(llm_simulator, admin_user, reviewer):
    """A dataset whose mode 3 came from an older model (a text the simulator never writes)."""
    dataset, samples = make_scene_dataset(name="rerun", per_category=2, categories=2)
    run_job_inline(job_create(kind="classification", params={"dataset": dataset.name, "mode": 2}, user=admin_user))
    run_job_inline(job_create(kind="classification", params={"dataset": dataset.name, "mode": 3}, user=admin_user))
    for sample in samples:
        Reasoning.objects.filter(sample=sample, mode=3).update(output=OLD.format(name=sample.label.name), length=30,
                                                                predicted_category=sample.label, is_correct=True)
    for category in {s.label for s in samples}:
        AssignmentFactory(reviewer=reviewer, category=category)
    return dataset, samples


def test_a_rerun_waits_for_the_reviewer_and_never_replaces_reviewed_text(first_run, admin_user, reviewer,
                                                                         reviewer_client, tmp_path):
    dataset, samples = first_run
    reviewed, corrected, untouched = samples[0], samples[1], samples[2]
    old_reviewed = OLD.format(name=reviewed.label.name)
    correction = f"推理：页面里是商品的颜色与尺码选择。\n类别：{corrected.label.name}"
    review_save(sample=reviewed, user=reviewer, cause=Cause.NONE, corrected_output="", label_error=False,
                suggested_label=None, note="", version=0)
    review_save(sample=corrected, user=reviewer, cause=Cause.NONE, corrected_output=correction, label_error=False,
                suggested_label=None, note="", version=0)
    before = exported(dataset, tmp_path)
    assert before[reviewed.external_id] == old_reviewed and before[corrected.external_id] == correction

    job = run_job_inline(job_create(kind="classification", params={"dataset": dataset.name, "mode": 3},
                                    user=admin_user))

    # The reviewed samples keep the version their review judged; the new text waits.
    row = Reasoning.objects.get(sample=reviewed, mode=3)
    assert (row.output, row.version, row.pending_version) == (old_reviewed, 1, 2)
    waiting = ReasoningVersion.objects.get(reasoning=row, status=ReasoningVersion.Status.PENDING)
    assert waiting.output != old_reviewed and waiting.source == f"job {job.pk}"
    assert Review.objects.get(sample=reviewed).judged_versions["3"] == 1
    # An unreviewed sample takes the new output at once; the old one is kept.
    fresh = Reasoning.objects.get(sample=untouched, mode=3)
    assert fresh.version == 2 and fresh.pending_version is None and fresh.output != OLD.format(name=untouched.label.name)
    assert ReasoningVersion.objects.get(reasoning=fresh).status == ReasoningVersion.Status.SUPERSEDED

    after = exported(dataset, tmp_path)
    assert after[reviewed.external_id] == old_reviewed and after[corrected.external_id] == correction
    expected = fresh.output if sample_status(untouched.pk).export_status == "kept" else None
    assert after.get(untouched.external_id) == expected

    # The report: this job's own answers beside the outputs before it ran.
    assert job.report["accuracy"]["total"] == len(samples)
    assert job.report["accuracy_before"]["correct"] == len(samples)  # the older outputs were all marked right
    assert job.report["pending_review"] == 2

    # The sample page says so and shows the diff; the queue has a filter for it.
    url = reverse("review:sample", args=[reviewed.pk])
    html = reviewer_client.get(url).content.decode()
    assert "模型在你审核后重新运行" in html and "<del>" in html and "<ins>" in html
    queue = reviewer_client.get(reverse("review:queue", args=[reviewed.label_id]), {"f": "rerun"})
    assert [s.external_id for s in queue.context["page"].object_list] == [reviewed.external_id, corrected.external_id]

    # Accepting makes the new version the one used; the reviewer's correction still wins over it.
    for sample in (reviewed, corrected):
        response = reviewer_client.post(reverse("review:rerun_decide", args=[sample.pk]), {"decision": "accept"},
                                        **HTMX)
        assert response.status_code == 200
    row.refresh_from_db()
    assert (row.version, row.pending_version, row.output) == (2, None, waiting.output)
    assert Review.objects.get(sample=reviewed).judged_versions["3"] == 2
    final = exported(dataset, tmp_path)
    assert final[reviewed.external_id] == waiting.output
    assert final[corrected.external_id] == correction
    assert "模型在你审核后重新运行" not in reviewer_client.get(url).content.decode()


def test_discarding_keeps_the_reviewed_version(first_run, admin_user, reviewer, reviewer_client, tmp_path):
    dataset, samples = first_run
    sample = samples[0]
    review_save(sample=sample, user=reviewer, cause=Cause.NONE, corrected_output="", label_error=False,
                suggested_label=None, note="", version=0)
    run_job_inline(job_create(kind="classification", params={"dataset": dataset.name, "mode": 3}, user=admin_user))
    reviewer_client.post(reverse("review:rerun_decide", args=[sample.pk]), {"decision": "discard"}, **HTMX)
    row = Reasoning.objects.get(sample=sample, mode=3)
    assert (row.output, row.pending_version) == (OLD.format(name=sample.label.name), None)
    assert ReasoningVersion.objects.get(reasoning=row).status == ReasoningVersion.Status.DISCARDED
    assert exported(dataset, tmp_path)[sample.external_id] == OLD.format(name=sample.label.name)


def test_a_reimport_of_changed_outputs_also_waits_for_the_reviewer(reviewer, assigned_category):
    from review.services import ClassificationRecord, classification_records_save

    dataset = assigned_category.dataset
    first = ClassificationRecord(external_id="s1", label=assigned_category.name,
                                 outputs={3: f"旧的推理。\n类别：{assigned_category.name}"})
    classification_records_save(dataset=dataset, records=[first])
    sample = dataset.samples.get()
    review_save(sample=sample, user=reviewer, cause=Cause.NONE, corrected_output="", label_error=False,
                suggested_label=None, note="", version=0)
    second = ClassificationRecord(external_id="s1", label=assigned_category.name,
                                  outputs={3: f"新的推理。\n类别：{assigned_category.name}"})
    result = classification_records_save(dataset=dataset, records=[second])
    assert result.reasonings_pending == 1
    row = Reasoning.objects.get(sample=sample, mode=3)
    assert row.output.startswith("旧的推理") and row.pending_version == 2
