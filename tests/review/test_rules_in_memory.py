"""`rules.status_of` (the rules evaluated in memory, as an import does for the samples it creates)
gives what `rules.with_status` (the same conditions, compiled to SQL) gives, for every kind of
sample: each mode-2 and mode-3 answer (none, right, wrong, unparseable, too long) with each kind of
review (none, a cause, a label error, a correction right, of the wrong class, too long)."""
import itertools

import pytest
from django.db.models import F, Q

from review import rules
from review.models import Cause, Mode, Sample
from tests.factories import CategoryFactory, DatasetFactory, ReasoningFactory, ReviewFactory, SampleFactory

pytestmark = pytest.mark.django_db

ANSWERS = ("none", "right", "wrong", "unparsed", "too_long")
REVIEWS = ("none", "no_cause", *rules.CAUSE_CODES, "label_error", "corrected_ok", "corrected_other_class",
           "corrected_too_long", "corrected_unparsed")


def _answer(sample, mode, kind, other, limit):
    if kind == "none":
        return
    predicted = {"right": sample.label, "too_long": sample.label, "wrong": other, "unparsed": None}[kind]
    length = limit + 5 if kind == "too_long" else 20
    ReasoningFactory(sample=sample, mode=mode, predicted_category=predicted, length=length)


def _review(sample, kind, other, limit):
    if kind == "none":
        return
    fields = {"cause": kind if kind in rules.CAUSE_CODES else ""}
    if kind == "label_error":
        fields.update(label_error=True, suggested_label=other, cause=Cause.LABEL_WRONG)
    elif kind.startswith("corrected"):
        category = {"corrected_ok": sample.label, "corrected_too_long": sample.label,
                    "corrected_other_class": other, "corrected_unparsed": None}[kind]
        fields.update(corrected_output="修正后的推理", corrected_category=category,
                      corrected_length=limit + 1 if kind == "corrected_too_long" else 10)
    ReviewFactory(sample=sample, **fields)


def _every_kind_of_sample(settings):
    """A dataset with one sample per mode-2 answer × mode-3 answer × review (length limit 100)."""
    settings.TRAINSET_MAX_LENGTH = 100
    dataset = DatasetFactory()
    label, other = CategoryFactory(dataset=dataset, name="换货"), CategoryFactory(dataset=dataset, name="退货退款")
    for n, (mode2, mode3, review) in enumerate(itertools.product(ANSWERS, ANSWERS, REVIEWS)):
        sample = SampleFactory(label=label, external_id=f"s{n:04d}")
        _answer(sample, Mode.WITH_DEFINITIONS, mode2, other, 100)
        _answer(sample, Mode.LIMITED, mode3, other, 100)
        _review(sample, review, other, 100)
    return dataset


def test_status_in_memory_equals_the_sql_for_every_kind_of_sample(settings):
    dataset = _every_kind_of_sample(settings)
    rows = list(rules.with_status(Sample.objects.filter(dataset=dataset)).values(
        *rules.STATUS_INPUTS, "live_mode2_error", "live_analysed", "live_model_status", "live_export_status"))
    assert len(rows) == len(ANSWERS) ** 2 * len(REVIEWS)
    seen = set()
    for row in rows:
        inputs = {name: row[name] for name in rules.STATUS_INPUTS}
        expected = {name: row[name] for name in ("live_mode2_error", "live_analysed", "live_model_status",
                                                 "live_export_status")}
        assert rules.status_of(inputs, 100) == expected, inputs
        seen.add((expected["live_export_status"], expected["live_model_status"]))
    # Every status was reached, so each rule was compared with the SQL at least once.
    assert {export for export, _ in seen} == set(rules.EXPORT_STATUS_LABELS)
    assert {model for _, model in seen} == {rules.KEPT, rules.MISSING, rules.UNPARSED, rules.WRONG, rules.TOO_LONG}


def test_a_loaded_samples_status_equals_the_query_for_every_kind_of_sample(settings):
    """The sample page's status (`loaded_sample_status`, from the sample, review and reasonings it
    shows) is `sample_status`'s, the query every save checks against."""
    dataset = _every_kind_of_sample(settings)
    loaded = Sample.objects.filter(dataset=dataset).select_related("review").prefetch_related("reasonings")
    seen = set()
    for sample in loaded:
        status = rules.loaded_sample_status(sample, {r.mode: r for r in sample.reasonings.all()})
        assert status == rules.sample_status(sample.pk), sample.external_id
        seen.add(status.export_status)
    assert seen == set(rules.EXPORT_STATUS_LABELS)


@pytest.mark.parametrize(("condition", "row", "holds"), [
    (Q(a=1), {"a": None}, False),  # NULL = 1 is unknown
    (Q(a=1) | Q(b=True), {"a": None, "b": True}, True),  # unknown OR true
    (Q(a=1) | Q(b=True), {"a": None, "b": False}, False),  # unknown OR false
    (Q(a=1) & Q(b=True), {"a": None, "b": True}, False),  # unknown AND true
    (Q(a__isnull=True), {"a": None}, True),
    (Q(a=None), {"a": None}, True),  # Django's =None is IS NULL
    (Q(a__gt=F("b")), {"a": 3, "b": 2}, True),
    (Q(a__lte=F("b")), {"a": 3, "b": None}, False),
    (Q(a=F("b")), {"a": None, "b": None}, False),  # NULL = NULL is unknown, not IS NULL
    (Q(a__in=("x", "y")), {"a": "y"}, True),
])
def test_conditions_hold_as_sql_decides(condition, row, holds):
    assert rules.condition_holds(condition, row) is holds


def test_a_negated_condition_is_refused_not_guessed():
    # Django writes NOT (a = 1 AND a IS NOT NULL) for a nullable column: true for NULL.
    with pytest.raises(ValueError):
        rules.condition_holds(~Q(a=1), {"a": None})


def test_an_unknown_column_or_lookup_is_an_error_not_a_null():
    with pytest.raises(KeyError):
        rules.condition_holds(Q(a=1), {"b": 1})
    with pytest.raises(KeyError):  # `icontains` is no lookup it knows: read as a column path, absent
        rules.condition_holds(Q(a__icontains="x"), {"a": "x"})
