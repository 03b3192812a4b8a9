"""Analysis numbers against the hand-computed scene in tests/review/fixtures.py."""
from review.analysis import class_analysis, confusion_table, dataset_overview
from review.models import Cause, Mode

W, L = Mode.WITH_DEFINITIONS, Mode.LIMITED


def test_overview_accuracy_per_class_and_mode(scene):
    overview = dataset_overview(dataset=scene.dataset)
    by_name = {c.category.name: c for c in overview.classes}
    assert [c.category.name for c in overview.classes] == ["商品分类选项", "换货", "退货退款"]
    a, b, c = by_name["商品分类选项"], by_name["换货"], by_name["退货退款"]
    assert (a.sample_count, b.sample_count, c.sample_count) == (4, 4, 1)
    assert (a.mode(W).total, a.mode(W).correct, a.mode(W).wrong, a.mode(W).unparsed) == (4, 2, 2, 0)
    assert a.mode(W).accuracy_percent == 50.0
    assert (b.mode(W).correct, b.mode(W).wrong, b.mode(W).unparsed) == (1, 2, 1)
    assert b.mode(W).accuracy_percent == 25.0
    assert (a.mode(L).correct, b.mode(L).correct, b.mode(L).over_limit) == (2, 2, 1)
    assert c.mode(L).total == 0 and c.mode(L).accuracy is None
    assert a.mode(Mode.FREE).total == 1
    assert overview.total(W).total == 9 and overview.total(W).correct == 4
    assert overview.total(L).total == 8 and overview.total(L).correct == 4


def test_overview_causes_changes_progress_and_proposal(scene):
    overview = dataset_overview(dataset=scene.dataset)
    by_name = {c.category.name: c for c in overview.classes}
    a, b = by_name["商品分类选项"], by_name["换货"]
    assert a.causes == {Cause.DEFINITIONS_OVERLAP: 1, Cause.LABEL_WRONG: 1, Cause.MODEL_WEAK: 0}
    assert b.causes == {Cause.DEFINITIONS_OVERLAP: 2, Cause.LABEL_WRONG: 0, Cause.MODEL_WEAK: 1}
    assert (a.label_errors, b.label_errors) == (1, 0)
    assert (a.mode2_errors, b.mode2_errors) == (2, 3)
    assert (a.right_to_wrong, a.wrong_to_right, b.right_to_wrong, b.wrong_to_right) == (1, 1, 0, 1)
    # What is left: A nothing (a3 corrected, a4 a label error); B b1 too long, b2 unparsed, b3 wrong.
    assert (a.counts.analysed, a.counts.pending, b.counts.analysed, b.counts.pending) == (2, 0, 3, 3)
    assert b.counts.by_status == {"kept": 1, "corrected": 0, "label_error": 0, "correction_failed": 0,
                                  "missing": 0, "unparsed": 1, "wrong": 1, "too_long": 1}
    # B: 2 of its 3 marked causes are overlap → propose; A has only one.
    assert [p.category.name for p in overview.proposals] == ["换货"]
    assert overview.causes == {Cause.DEFINITIONS_OVERLAP: 3, Cause.LABEL_WRONG: 1, Cause.MODEL_WEAK: 1}
    assert overview.unmarked_mode2_errors == 0
    progress = {p.username: (p.categories, p.counts.reviewed, p.counts.pending) for p in overview.reviewers}
    assert progress == {"reviewer1": (["商品分类选项"], 3, 0), "reviewer2": (["换货"], 3, 3)}
    assert ("换货", "商品分类选项", 2) in overview.top_confusions
    assert ("商品分类选项", "换货", 2) in overview.top_confusions


def test_class_analysis_lists_mode2_errors_with_prediction_and_cause(scene):
    analysis = class_analysis(category=scene.b)
    assert analysis.sample_count == 4
    rows = [(e.external_id, e.predicted_category, e.cause, e.unparsed) for e in analysis.mode2_errors]
    assert rows == [
        ("b2", "", Cause.MODEL_WEAK, True),
        ("b3", "商品分类选项", Cause.DEFINITIONS_OVERLAP, False),
        ("b4", "商品分类选项", Cause.DEFINITIONS_OVERLAP, False),
    ]
    assert analysis.wrong_to_right == [(scene.samples["b4"].pk, "b4")] and analysis.right_to_wrong == []
    assert analysis.propose_revision and analysis.overlap_with == [("商品分类选项", 2)]
    assert analysis.predicted == {"换货": {W: 1, L: 2}, "": {W: 1, L: 1}, "商品分类选项": {W: 2, L: 1}}
    assert analysis.predicted_as_this == {"商品分类选项": {W: 2, L: 2}}


def test_class_analysis_changes_between_mode2_and_mode3(scene):
    analysis = class_analysis(category=scene.a)
    assert analysis.right_to_wrong == [(scene.samples["a3"].pk, "a3")]
    assert analysis.wrong_to_right == [(scene.samples["a2"].pk, "a2")]
    assert [e.external_id for e in analysis.mode2_errors] == ["a2", "a4"]
    assert analysis.mode2_errors[1].label_error is True
    assert not analysis.propose_revision


def test_confusion_table_label_vs_predicted(scene):
    table = confusion_table(dataset=scene.dataset, mode=W)
    # columns: A, B, C, unparsed
    assert table.rows == [[2, 2, 0, 0], [2, 1, 0, 1], [0, 0, 1, 0]]


def test_overview_query_count_is_flat(scene, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        overview = dataset_overview(dataset=scene.dataset)
        [c.category.name for c in overview.classes]
