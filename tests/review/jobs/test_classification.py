"""Classification jobs: Reasoning rows with prompt version + model, parsing tolerance, rerun of wrong samples."""
import pytest

from core.errors import ApplicationError
from pipelines.jobs.services import job_create, run_job_inline
from pipelines.models import ItemStatus, JobStatus, PromptTemplate
from pipelines.jobs.prompts import prompt_current, prompt_save_version
from review.jobs.classification import accuracy, classification_rerun_wrong
from review.models import Reasoning
from tests.factories import ReasoningFactory
from tests.pipelines.jobs.scenes import draw_sample_image, make_scene_dataset

pytestmark = pytest.mark.django_db


def test_reasonings_record_prompt_version_model_and_length(llm_simulator, scene_dataset, admin_user):
    dataset, samples = scene_dataset
    job = run_job_inline(job_create(kind="classification", params={"dataset": dataset.name, "mode": 3},
                                    user=admin_user))
    template = prompt_current(PromptTemplate.Kind.CLASSIFICATION_MODE3)
    rows = list(Reasoning.objects.filter(sample__in=samples, mode=3))
    assert len(rows) == len(samples)
    for row in rows:
        assert row.prompt_template_id == template.pk
        assert row.model_name == "qwen-vl-72b-instruct"
        assert row.length == sum(1 for ch in row.output if not ch.isspace())
        assert row.output.startswith("推理：")
    parsed = [r for r in rows if r.predicted_category_id]
    assert all(r.is_correct == (r.predicted_category_id == r.sample.label_id) for r in parsed)
    assert job.report["accuracy"]["total"] == len(samples)


def test_only_selected_categories_are_run(llm_simulator, scene_dataset, admin_user):
    dataset, samples = scene_dataset
    names = [samples[0].label.name, samples[-1].label.name]
    job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 2, "categories": names},
                     user=admin_user)
    assert job.items_total == 4
    run_job_inline(job)
    assert set(Reasoning.objects.filter(mode=2).values_list("sample__label__name", flat=True)) == set(names)


def test_a_rerun_overwrites_the_row_instead_of_adding_one(llm_simulator, scene_dataset, admin_user):
    dataset, samples = scene_dataset
    for _ in range(2):
        run_job_inline(job_create(kind="classification", params={"dataset": dataset.name, "mode": 1}, user=admin_user))
    assert Reasoning.objects.filter(mode=1).count() == len(samples)


@pytest.mark.parametrize("answer, expected", [
    ("推理：图中有颜色和尺码选项。\n类别：商品分类选项", "商品分类选项"),
    ("推理：……\n最终类别：【实物拍摄】", "实物拍摄"),
    ("推理：……\n类别: 商品头图（主图）", "商品头图"),
    ("分析如下……\n分类结果为：商品详情页截图", "商品详情页截图"),
    ("推理：……\n类别：无法确定，可能是实物拍摄或商品头图", None),
    ("这张图片很难判断。", None),
])
def test_parsing_tolerates_format_variations_and_records_unparseable(answer, expected, scene_dataset, admin_user):
    from review.jobs.classification import ClassificationHandler
    from pipelines.jobs.kinds import ItemFailed, get_handler

    dataset, samples = scene_dataset
    sample = samples[0]
    job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 2}, user=admin_user)
    handler = get_handler("classification")
    assert isinstance(handler, ClassificationHandler)
    payload = {"sample_id": sample.pk, "label_id": sample.label_id}
    output = {"text": answer, "model": "qwen-vl-max", "raw": {}}
    if expected is None:
        with pytest.raises(ItemFailed) as failed:
            handler.store(job, str(sample.pk), payload, output)
        assert failed.value.kind == "unparseable"
    else:
        handler.store(job, str(sample.pk), payload, output)
    row = Reasoning.objects.get(sample=sample, mode=2)
    assert row.output == answer  # recorded even when unparseable
    assert (row.predicted_category.name if row.predicted_category else None) == expected
    assert row.is_correct is (None if expected is None else expected == sample.label.name)


def test_unmarked_and_missing_images(llm_simulator, scene_dataset, admin_user):
    dataset, samples = scene_dataset
    samples[0].image = "scenes/does-not-exist.png"
    samples[0].save()
    samples[1].image = "../../etc/passwd"
    samples[1].save()
    samples[2].image = draw_sample_image("scenes/unmarked.png", None)
    samples[2].save()
    job = run_job_inline(job_create(kind="classification", params={"dataset": dataset.name, "mode": 2},
                                    user=admin_user))
    missing = dict(job.items.filter(error_kind="missing").values_list("key", "error"))
    assert set(missing) == {str(samples[0].pk), str(samples[1].pk)}
    assert "路径超出" in missing[str(samples[1].pk)]
    # An image without a marker is still sent: the model answers a class this dataset lacks
    # (其他类别图片), so the answer is kept, with no class, and the item fails as unparseable.
    unmarked = job.items.get(key=str(samples[2].pk))
    assert (unmarked.status, unmarked.error_kind) == (ItemStatus.FAILED, "unparseable")
    reasoning = Reasoning.objects.get(sample=samples[2], mode=2)
    assert "其他类别图片" in reasoning.output and reasoning.predicted_category is None
    assert set(job.items.filter(status=ItemStatus.DONE).values_list("key", flat=True)) == {
        str(s.pk) for s in samples[3:]}
    assert job.status == JobStatus.DONE


def test_rerun_wrong_samples_with_an_edited_prompt_reports_before_and_after(llm_simulator, admin_user):
    dataset, samples = make_scene_dataset(name="rerun", per_category=6, categories=3)
    category = samples[0].label
    mine = [s for s in samples if s.label_id == category.pk]
    # Mode 2 got four of the six wrong before.
    other = samples[-1].label
    for i, sample in enumerate(mine):
        ReasoningFactory(sample=sample, mode=2, predicted_category=other if i < 4 else category, is_correct=i >= 4)
    before = accuracy(category=category, mode=2)
    assert (before["correct"], before["total"]) == (2, 6)

    text = prompt_current(PromptTemplate.Kind.CLASSIFICATION_MODE2).text + "\n注意区分相似类别。"
    job = classification_rerun_wrong(category=category, mode=2, prompt_text=text, user=admin_user)
    assert job.items_total == 4
    template = PromptTemplate.objects.get(pk=job.params["prompt_template_id"])
    assert template.version == 2 and template.text == text.strip()
    job = run_job_inline(job)
    rerun = job.report["rerun"]
    assert rerun["before"]["correct"] == 2 and rerun["before"]["total"] == 6
    after = accuracy(category=category, mode=2)
    assert rerun["after"] == after
    assert rerun["fixed"] == after["correct"] - 2
    assert after["correct"] > 2, "the simulated model answers most marked images right"
    # The untouched right samples keep their old rows (no prompt template), the rerun ones the new version.
    assert set(Reasoning.objects.filter(sample__in=mine[:4], mode=2).values_list("prompt_template_id", flat=True)) == {template.pk}


def test_rerun_wrong_without_wrong_samples_is_refused(scene_dataset, admin_user):
    dataset, samples = scene_dataset
    ReasoningFactory(sample=samples[0], mode=2, is_correct=True)
    with pytest.raises(ApplicationError, match="没有推理错误"):
        classification_rerun_wrong(category=samples[0].label, mode=2, prompt_text="类别：", user=admin_user)


def test_prompt_versions(admin_user):
    first = prompt_current(PromptTemplate.Kind.CLASSIFICATION_MODE1)
    assert first.version == 1 and "{category_names}" in first.text
    same = prompt_save_version(kind=first.kind, text=first.text, user=admin_user)
    assert same.pk == first.pk
    second = prompt_save_version(kind=first.kind, text=first.text + "\n请简洁。", user=admin_user)
    assert second.version == 2 and prompt_current(first.kind).pk == second.pk
    with pytest.raises(ApplicationError):
        prompt_save_version(kind=first.kind, text="   ", user=admin_user)
    with pytest.raises(ApplicationError, match="类别"):
        prompt_save_version(kind=first.kind, text="请描述图片", user=admin_user)


def test_run_classification_command_inline(llm_simulator, scene_dataset, capsys):
    from django.core.management import call_command

    dataset, samples = scene_dataset
    call_command("run_classification", "--dataset", dataset.name, "--mode", "2", "--category",
                 samples[0].label.name, "--inline")
    out = capsys.readouterr().out
    assert "2 items" in out and "完成" in out
    assert Reasoning.objects.filter(mode=2).count() == 2


def test_run_classification_command_rejects_unknown_dataset():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="数据集不存在"):
        call_command("run_classification", "--dataset", "nope", "--mode", "2")


def test_the_default_mode3_prompt_states_the_length_limit_as_set(settings):
    settings.TRAINSET_MAX_LENGTH = 80
    assert "推理部分请控制在80字以内" in prompt_current(PromptTemplate.Kind.CLASSIFICATION_MODE3).text
