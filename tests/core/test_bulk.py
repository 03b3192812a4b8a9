"""core.bulk writes rows exactly as the ORM would store them (read back through the ORM), on SQLite
and PostgreSQL: JSON (a bare string included), NULLs, booleans, negative numbers, timestamps."""
import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.bulk import insert_rows, insert_values, update_instances, update_rows
from review.models import Dataset, LabelSuspicion, Reasoning, Sample
from tests.factories import CategoryFactory, SampleFactory

pytestmark = pytest.mark.django_db


def test_inserted_rows_read_back_as_the_orm_stores_them():
    category = CategoryFactory()
    before = timezone.now()
    samples = [
        Sample(dataset=category.dataset, external_id="s-1", label=category, image_info={"颜色": ["红", None]},
               provenance=None, description="第一张"),
        Sample(dataset=category.dataset, external_id="s-2", label=category, image_info="只是一句话",
               provenance={"mode1": {"position": 0}}, description=""),
    ]
    assert insert_rows(samples) == 2
    stored = {s.external_id: s for s in Sample.objects.filter(dataset=category.dataset)}
    assert stored["s-1"].image_info == {"颜色": ["红", None]} and stored["s-1"].provenance is None
    assert stored["s-1"].description == "第一张" and stored["s-1"].label_id == category.pk
    assert stored["s-2"].image_info == "只是一句话" and stored["s-2"].provenance == {"mode1": {"position": 0}}
    # auto_now(_add) columns are filled in, on the rows and on the instances alike
    assert stored["s-1"].created_at >= before and stored["s-1"].updated_at == samples[0].updated_at

    reasoning = Reasoning(sample=stored["s-1"], mode=3, version=1, output="推理\n类别：x", predicted_name="x",
                          predicted_category=None, is_correct=False, length=0, raw_response=None)
    insert_rows([reasoning])
    row = Reasoning.objects.get(sample=stored["s-1"])
    assert (row.is_correct, row.length, row.predicted_category_id, row.raw_response) == (False, 0, None, None)


def test_an_upsert_updates_the_named_fields_of_the_row_it_collides_with():
    sample = SampleFactory()
    LabelSuspicion.objects.filter(sample=sample).delete()
    insert_rows([LabelSuspicion(sample=sample, score=0.5, evidence=[{"source": "mode1"}], fingerprint="a")])
    insert_rows([LabelSuspicion(sample=sample, score=0.0, evidence=[], fingerprint="b", suggested_category=None)],
                update_on_conflict=(["sample"], ["score", "evidence", "fingerprint"]))
    stored = LabelSuspicion.objects.get(sample=sample)
    assert (stored.score, stored.evidence, stored.fingerprint) == (0.0, [], "b")


def test_updated_rows_get_exactly_the_given_values():
    sample = SampleFactory(description="旧")
    when = timezone.now().replace(microsecond=123456)
    update_rows(Sample, ["description", "image_info", "sort_length", "reviewed", "updated_at"],
                [(sample.pk, ["新的描述", {"a": [1, "二"]}, -42, True, when])])
    sample.refresh_from_db()
    assert (sample.description, sample.image_info, sample.sort_length, sample.reviewed, sample.updated_at) == (
        "新的描述", {"a": [1, "二"]}, -42, True, when)
    assert Dataset.objects.count() == 1


def test_updated_instances_store_their_current_values_a_foreign_key_by_its_name():
    first, second = SampleFactory(description="一"), SampleFactory(description="二")
    other = CategoryFactory(dataset=first.dataset)
    first.label, first.description = other, "改了"
    second.description = "也改了"
    untouched = second.image_info
    second.image_info = {"不": "存"}  # not named: not written
    assert update_instances([first, second], ["label", "description"]) == 2
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.label_id, first.description) == (other.pk, "改了")
    assert (second.description, second.image_info) == ("也改了", untouched)


def test_rows_given_as_values_are_stored_as_the_orm_stores_them_defaults_filled_in():
    sample = SampleFactory()
    Reasoning.objects.filter(sample=sample).delete()
    before = timezone.now()
    assert insert_values(Reasoning, [
        {"sample_id": sample.pk, "mode": 1, "output": "推理一", "raw_response": {"choices": [{"logprobs": None}]},
         "is_correct": True, "length": 3},
        {"sample_id": sample.pk, "mode": 2, "output": "推理二", "raw_response": None, "predicted_category_id": None},
    ]) == 2
    first, second = Reasoning.objects.filter(sample=sample).order_by("mode")
    assert (first.output, first.raw_response, first.is_correct, first.length) == (
        "推理一", {"choices": [{"logprobs": None}]}, True, 3)
    # what a row lacks takes the field's default, as an instance would have it
    assert (second.is_correct, second.length, second.version, second.model_name, second.pending_version) == (
        None, 0, 1, "", None)
    assert second.raw_response is None and first.created_at >= before and first.updated_at >= before


def test_rows_given_as_values_upsert_too():
    sample = SampleFactory()
    LabelSuspicion.objects.filter(sample=sample).delete()
    insert_values(LabelSuspicion, [{"sample_id": sample.pk, "score": 0.5, "evidence": [{"source": "mode1"}],
                                    "fingerprint": "a"}])
    insert_values(LabelSuspicion, [{"sample_id": sample.pk, "score": 0.25, "evidence": [], "fingerprint": "b"}],
                  update_on_conflict=(["sample"], ["score", "evidence", "fingerprint"]))
    stored = LabelSuspicion.objects.get(sample=sample)
    assert (stored.score, stored.evidence, stored.fingerprint, stored.suggested_category_id) == (0.25, [], "b", None)


def test_text_with_tabs_newlines_backslashes_and_a_literal_null_marker_round_trips():
    """PostgreSQL's inserts go through COPY, whose text format gives tabs, newlines, backslashes and
    `\\N` meanings of their own: a model's output with them comes back unchanged, never as NULL."""
    sample = SampleFactory()
    tricky = "第一行\t制表\n第二行 \\ 反斜杠 \\N 不是空值\r\n类别：x"
    insert_values(Reasoning, [{"sample_id": sample.pk, "mode": 3, "version": 1, "output": tricky,
                               "predicted_name": "\\N", "length": 7, "raw_response": {"text": tricky}}])
    row = Reasoning.objects.get(sample=sample)
    assert (row.output, row.predicted_name, row.raw_response) == (tricky, "\\N", {"text": tricky})


def test_a_row_breaking_a_constraint_raises_djangos_integrity_error_and_writes_nothing():
    """Callers catch Django's IntegrityError whatever the database (COPY runs on the driver's own
    cursor on PostgreSQL)."""
    category = CategoryFactory()
    rows = [Sample(dataset=category.dataset, external_id=sid, label=category) for sid in ("d-1", "d-1")]
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(rows)
    assert not Sample.objects.filter(dataset=category.dataset).exists()
