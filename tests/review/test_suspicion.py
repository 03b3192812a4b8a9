"""The label-error suspicion score: its formula, its reasons, when it is recomputed, and the floor of
its ranking quality on generated data with planted label errors."""
import math

import pytest

from review.models import LabelSuspicion, Mode, Reasoning, Sample
from review.suspicion import (
    Answer, DefinitionMatcher, Witness, class_name_probability, info_text, ranked_samples, ranking_quality,
    sample_suspicion, suspicion_for, suspicion_score, suspicions_refresh,
)
from tests.factories import CategoryFactory, DatasetFactory, ReasoningFactory, SampleFactory

DEFINITIONS = [
    (1, "退货页面", "图片中显示退货退款的申请或进度：寄回地址、退货运单号和商家收货状态"),
    (2, "换货页面", "图片中显示换货的申请或进度：换货原因、新规格的选择以及寄回与寄出状态"),
    (3, "支付页面", "图片中显示收银台或支付结果：支付方式、支付金额、支付成功或失败的提示"),
]


def test_the_score_is_the_net_share_of_the_evidence_for_the_most_named_other_class():
    every_witness_elsewhere = [Witness("mode1", 2, "换货页面", 1), Witness("mode2", 2, "换货页面", 1),
                               Witness("mode3", 2, "换货页面", 1), Witness("info", 2, "换货页面", 2)]
    result = suspicion_score(label_id=1, witnesses=every_witness_elsewhere)
    assert (result.score, result.suggested_id, result.suggested_name) == (1.0, 2, "换货页面")

    # Modes 1 and 2 agree on another class, mode 3 keeps the label: (2 − 1) / 5.
    split = [Witness("mode1", 2, "换货页面", 1), Witness("mode2", 2, "换货页面", 1), Witness("mode3", 1, "退货页面", 1)]
    assert suspicion_score(label_id=1, witnesses=split).score == pytest.approx(0.2)

    # Two other classes named once each do not add up: the most-named one counts.
    scattered = [Witness("mode1", 2, "换货页面", 1), Witness("mode2", 3, "支付页面", 1)]
    assert suspicion_score(label_id=1, witnesses=scattered).score == pytest.approx(0.2)

    # The label holding as much as any other class: nothing suspected.
    held = [Witness("mode2", 2, "换货页面", 1), Witness("info", 1, "退货页面", 2)]
    assert suspicion_score(label_id=1, witnesses=held).score == 0
    assert suspicion_score(label_id=1, witnesses=[]).score == 0


def test_log_probabilities_weigh_a_mode_by_the_probability_of_the_class_name_it_wrote():
    tokens = [{"token": "推理：申请换货页面。\n类别：", "logprob": -0.01},
              {"token": "换货", "logprob": math.log(0.5)}, {"token": "页面", "logprob": math.log(0.8)}]
    openai_shape = {"choices": [{"logprobs": {"content": tokens}}]}
    assert class_name_probability(openai_shape, "换货页面") == pytest.approx(0.4)
    assert class_name_probability({"logprobs": tokens}, "换货页面") == pytest.approx(0.4)
    assert class_name_probability({"id": "x"}, "换货页面") is None
    assert class_name_probability({"logprobs": tokens}, "退货页面") is None

    matcher = DefinitionMatcher(DEFINITIONS)
    hesitant = sample_suspicion(label_id=1, info="", matcher=matcher, answers=[
        Answer(Mode.WITH_DEFINITIONS, 2, "换货页面", {"logprobs": tokens})])
    sure = sample_suspicion(label_id=1, info="", matcher=matcher, answers=[Answer(Mode.WITH_DEFINITIONS, 2, "换货页面")])
    assert hesitant.score == pytest.approx(0.4 / 5)
    assert sure.score == pytest.approx(1 / 5)
    assert hesitant.witnesses[0].confidence == pytest.approx(0.4)


def test_the_image_information_names_the_class_whose_definition_it_matches_best():
    matcher = DefinitionMatcher(DEFINITIONS)
    text = info_text(description="用户在申请换货，页面上有换货原因和新规格的选择",
                     image_info={"visible_text": ["申请换货", "提交申请"], "_source": {"file": "退货页面.json"}})
    assert "退货页面.json" not in text  # provenance is not image content
    witness = matcher.witness(text, label_id=1)
    assert (witness.source, witness.category_name, witness.weight) == ("info", "换货页面", 2.0)
    assert witness.confidence > witness.label_match

    # Two classes matching equally well: the information does not tell them apart.
    assert matcher.witness("申请的进度", label_id=1) is None
    assert matcher.witness("寄回地址、退货运单号", label_id=1).category_name == "退货页面"
    assert matcher.witness("", label_id=1) is None
    assert matcher.witness("风景", label_id=1) is None


@pytest.fixture
def scenes(db):
    dataset = DatasetFactory(name="scenes-suspicion")
    return dataset, {name: CategoryFactory(dataset=dataset, name=name, definition=definition, position=i)
                     for i, (_, name, definition) in enumerate(DEFINITIONS)}


def _sample(categories, label, predicted, *, external_id, info=None):
    sample = SampleFactory(label=categories[label], external_id=external_id, image_info=info)
    for mode, name in zip((Mode.FREE, Mode.WITH_DEFINITIONS, Mode.LIMITED), predicted):
        ReasoningFactory(sample=sample, mode=mode, predicted_category=categories[name] if name else None,
                         output=f"推理：……\n类别：{name or '不确定'}")
    return sample


def test_stored_scores_follow_every_change_of_their_evidence(scenes, django_assert_max_num_queries,
                                                             django_capture_on_commit_callbacks):
    dataset, categories = scenes
    suspect = _sample(categories, "退货页面", ["换货页面", "换货页面", "换货页面"], external_id="a-1")
    fine = _sample(categories, "退货页面", ["退货页面", "退货页面", "退货页面"], external_id="a-2")
    samples = Sample.objects.filter(dataset=dataset)

    def stored(sample):
        row = LabelSuspicion.objects.get(sample=sample)
        assert Sample.objects.get(pk=sample.pk).label_suspicion == row.score  # the queue's copy agrees
        return row.score

    # Saving the outputs computed the scores; checking them again writes nothing.
    assert stored(suspect) == pytest.approx(0.6) and stored(fine) == 0
    with django_assert_max_num_queries(2):
        assert suspicions_refresh(samples=samples) == 0

    # Image information written around the services (a queryset update): only that sample is
    # recomputed, by whoever refreshes next (the info-extraction job and import do at once).
    Sample.objects.filter(pk=suspect.pk).update(image_info={"visible_text": ["申请换货", "换货原因", "选择新规格"]},
                                                 updated_at=suspect.updated_at.replace(year=2099))
    assert suspicions_refresh(samples=samples) == 1
    assert stored(suspect) == pytest.approx(1.0)

    # A revised definition changes every match of the dataset: recomputed once it is committed.
    with django_capture_on_commit_callbacks(execute=True):
        categories["换货页面"].revised_definition = "用户寄回商品并等待新规格寄出"
        categories["换货页面"].save()
    assert suspicions_refresh(samples=samples) == 0

    # A new mode-2 answer (a re-run accepted) for the clean sample: one mode against two.
    mode2 = fine.reasonings.get(mode=Mode.WITH_DEFINITIONS)
    mode2.predicted_category = categories["支付页面"]
    mode2.save()
    evidence = LabelSuspicion.objects.get(sample=fine).evidence
    assert [w["category_name"] for w in evidence if w["source"] == "mode2"] == ["支付页面"]
    assert stored(fine) == 0
    # A label changed by hand: modes 1 and 3 now argue against it, mode 2 for it: (2 − 1) / 5.
    fine.label = categories["支付页面"]
    fine.save()
    assert stored(fine) == pytest.approx(0.2)


def test_the_sample_page_reasons_and_the_ranking(scenes):
    dataset, categories = scenes
    _sample(categories, "退货页面", ["换货页面", "换货页面", "退货页面"], external_id="b-2")
    strong = _sample(categories, "退货页面", ["换货页面", "换货页面", "换货页面"], external_id="b-1",
                     info={"visible_text": ["申请换货", "换货原因"]})
    _sample(categories, "支付页面", ["支付页面", "支付页面", "支付页面"], external_id="b-3")
    view = suspicion_for(Sample.objects.select_related("label").get(pk=strong.pk))
    assert view.suspected and view.score == 1.0 and view.suggested_name == "换货页面"
    assert [w.source for w in view.against] == ["mode1", "mode2", "mode3", "info"]
    assert view.for_label == []
    ranked = list(ranked_samples(samples=Sample.objects.filter(dataset=dataset)).values_list("external_id", flat=True))
    assert ranked == ["b-1", "b-2"]  # the clean sample has no score and is not ranked


def test_ranking_quality_counts_hits_in_the_top_k():
    quality = ranking_quality(["a", "b", "c", "d"], {"a", "c", "x"}, ks=(2, 4))
    assert [(q.k, q.hits, q.precision, round(q.recall, 2)) for q in quality] == [(2, 1, 0.5, 0.33), (4, 2, 0.5, 0.67)]


def test_rank_label_errors_prints_ids_as_imported_most_suspect_first(scenes):
    from io import StringIO

    from django.core.management import CommandError, call_command

    dataset, categories = scenes
    _sample(categories, "退货页面", ["换货页面", "换货页面", "退货页面"], external_id="样本/弱")         # 0.2
    _sample(categories, "退货页面", ["换货页面", "换货页面", "换货页面"], external_id="样本/强",
            info={"visible_text": ["申请换货", "换货原因"]})                                           # 1.0
    _sample(categories, "支付页面", ["换货页面", "换货页面", "换货页面"], external_id="样本/中")       # 0.6
    _sample(categories, "支付页面", ["支付页面", "支付页面", "支付页面"], external_id="样本/无")

    def run(*args):
        out = StringIO()
        call_command("rank_label_errors", "--dataset", dataset.name, *args, stdout=out)
        return out.getvalue().splitlines()

    assert run() == ["样本/强", "样本/中"]                       # the suspected ones (score ≥ 0.4)
    assert run("--top", "10") == ["样本/强", "样本/中", "样本/弱"]  # every sample with a score, at most K
    assert run("--top", "1", "--scores") == ["样本/强\t1.00\t换货页面"]
    assert run("--category", "支付") == ["样本/中"]
    with pytest.raises(CommandError, match="不存在"):
        call_command("rank_label_errors", "--dataset", "没有这个")


def test_a_classification_job_asked_for_logprobs_keeps_the_answer_lines_and_the_score_reads_them(db, llm_simulator):
    from pipelines.jobs.services import job_create, run_job_inline
    from tests.pipelines.jobs.scenes import make_scene_dataset

    dataset, samples = make_scene_dataset(name="logprobs", per_category=2, categories=3)
    job = run_job_inline(job_create(kind="classification", params={"dataset": dataset.name, "mode": 2,
                                                                     "logprobs": True}, enqueue=False))
    assert job.params["logprobs"] is True and job.items_done >= 4
    suspicions_refresh(samples=Sample.objects.filter(dataset=dataset))
    checked = 0
    for reasoning in Reasoning.objects.filter(
            sample__dataset=dataset, mode=Mode.WITH_DEFINITIONS, predicted_category__isnull=False):
        tokens = reasoning.raw_response["logprobs"]
        line = "".join(t["token"] for t in tokens)
        assert "\n" not in line and reasoning.output.endswith(line), "the answer line's tokens, nothing more"
        expected = class_name_probability(reasoning.raw_response, reasoning.predicted_name)
        assert expected is not None
        evidence = LabelSuspicion.objects.get(sample_id=reasoning.sample_id).evidence
        assert [w["confidence"] for w in evidence if w["source"] == "mode2"] == [pytest.approx(expected, abs=1e-4)]
        checked += 1
    assert checked >= 4


def test_the_simulated_model_is_less_sure_of_the_classes_it_gets_wrong(db, llm_simulator):
    """Log-probabilities from the simulator are a signal, as a real model's are: the class name of
    a mistaken answer is given less probability than that of a right one."""
    from pipelines.jobs.services import job_create, run_job_inline
    from tests.pipelines.jobs.scenes import make_scene_dataset

    dataset, _ = make_scene_dataset(name="confidence", per_category=8, categories=6)
    run_job_inline(job_create(kind="classification", params={"dataset": dataset.name, "mode": 1, "logprobs": True},
                              enqueue=False))
    right, wrong = [], []
    for reasoning in Reasoning.objects.filter(sample__dataset=dataset, predicted_category__isnull=False):
        probability = class_name_probability(reasoning.raw_response, reasoning.predicted_name)
        (right if reasoning.is_correct else wrong).append(probability)
    assert right and wrong, "mode 1 of the simulator errs on some of 48 images"
    assert max(wrong) < min(right)


def test_a_witness_is_stored_with_every_one_of_its_fields():
    from dataclasses import asdict

    witness = Witness("info", 3, "换货页面", 2.0, 0.61, 0.2)
    assert witness.as_json() == asdict(witness)
