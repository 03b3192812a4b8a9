"""How review.counts writes the stored verdicts: the batched UPDATE (core.bulk) writes exactly the values given
(NULLs, booleans, negative and 64-bit integers, text) to exactly the rows given, on SQLite and on
PostgreSQL alike; and `refresh_all` repairs stored verdicts and counters edited by hand."""
import pytest

from core.bulk import update_rows
from review.counts import STATUS_FIELDS, refresh_all
from review.models import Mode, Reasoning, ReasoningCount, Sample, SampleCount
from tests.factories import CategoryFactory, DatasetFactory, ReasoningFactory, SampleFactory
from tests.review.test_counters import assert_counters_match

pytestmark = pytest.mark.django_db


def stored(model, pk: int, fields) -> list:
    return list(model.objects.filter(pk=pk).values_list(*fields).get())


def test_the_batched_update_writes_exactly_the_values_given():
    category = CategoryFactory(dataset=DatasetFactory(name="batched"), name="换货")
    first, second, untouched = (SampleFactory(label=category) for _ in range(3))
    before = stored(Sample, untouched.pk, STATUS_FIELDS)
    values = {
        first.pk: ["corrected", "too_long", True, False, True, False, True, "w2r", None, 0, -150,
                   -1_764_931_200_123, "7|corrected|too_long|1|0|1|0|1|w2r|"],
        second.pk: ["label_error", "kept", False, True, False, True, False, "", 2_000_000_000, -32768, 0, 0,
                    "含'引号\"与 %s 的键"],
    }
    update_rows(Sample, list(STATUS_FIELDS), list(values.items()))

    for pk, expected in values.items():
        assert stored(Sample, pk, STATUS_FIELDS) == expected
    assert stored(Sample, untouched.pk, STATUS_FIELDS) == before


def test_the_batched_update_takes_a_single_column_and_a_single_row():
    reasoning = ReasoningFactory(mode=Mode.LIMITED)
    update_rows(Reasoning, ["counted_key"], [(reasoning.pk, ["3|3|~|~|0|42"])])
    assert stored(Reasoning, reasoning.pk, ["counted_key"]) == ["3|3|~|~|0|42"]
    update_rows(Reasoning, ["counted_key"], [])  # nothing to write: no statement, no error
    assert stored(Reasoning, reasoning.pk, ["counted_key"]) == ["3|3|~|~|0|42"]


def test_refresh_all_repairs_verdicts_and_counters_edited_by_hand():
    dataset = DatasetFactory(name="repaired")
    right = CategoryFactory(dataset=dataset, name="换货")
    other = CategoryFactory(dataset=dataset, name="退货退款")
    samples = [SampleFactory(label=right) for _ in range(4)]
    for i, sample in enumerate(samples):
        ReasoningFactory(sample=sample, mode=Mode.WITH_DEFINITIONS, predicted_category=other if i % 2 else right)
        ReasoningFactory(sample=sample, mode=Mode.LIMITED)
    assert_counters_match(dataset)
    computed = {s.pk: stored(Sample, s.pk, STATUS_FIELDS) for s in samples}
    # Edited by hand: a verdict column (its counted key left as it was), a counted key, counters.
    Sample.objects.filter(pk=samples[0].pk).update(export_status="label_error", sort_length=5)
    Sample.objects.filter(pk=samples[1].pk).update(counted_key="")
    Reasoning.objects.filter(sample=samples[2], mode=Mode.LIMITED).update(counted_key="")
    SampleCount.objects.filter(category=right).update(count=99)
    ReasoningCount.objects.all().delete()

    assert refresh_all() == 4
    assert_counters_match(dataset)
    assert {s.pk: stored(Sample, s.pk, STATUS_FIELDS) for s in samples} == computed
