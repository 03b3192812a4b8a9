"""The stored verdicts and per-class counters (review.counts) always equal what the rules compute from
the rows themselves, whichever way the rows were written; and the queue's keyset neighbours walk
exactly the queue's order."""
import itertools
import random

import pytest
from django.db.models import Count, Q, Sum

from review import rules, selectors
from review.counts import COUNT_DIMENSIONS, REASONING_DIMENSIONS, STATUS_FIELDS, category_counts, refresh_all
from review.models import (
    Category, Cause, LabelSuspicion, Mode, Reasoning, ReasoningCount, Review, Sample, SampleCount,
)
from review.suspicion import suspicions_refresh
from review.selectors import QUEUE_SORTS, queue_filters, queue_position, queue_samples
from review.services import (
    ClassificationRecord, ModelOutput, classification_records_save, reasoning_pending_decide, reasonings_store,
    review_keep, review_restore, review_save,
)
from tests.factories import CategoryFactory, DatasetFactory, ReasoningFactory, ReviewFactory, SampleFactory

pytestmark = pytest.mark.django_db
NAMES = ["商品分类选项", "换货", "退货退款"]


def live_counts(dataset) -> dict[int, dict]:
    """The oracle: the counts computed from the rows now, with the rules' SQL (no counters)."""
    rows = (
        rules.with_status(Sample.objects.filter(dataset=dataset)).order_by().values("label_id").annotate(
            total=Count("pk"),
            reviewed=Count("pk", filter=Q(review__isnull=False)),
            mode2_errors=Count("pk", filter=rules.MODE2_ERROR),
            analysed=Count("pk", filter=rules.ANALYSED),
            rerun_pending=Count("pk", filter=rules.RERUN_PENDING),
            **{f"s_{key}": Count("pk", filter=Q(live_export_status=key)) for key in rules.EXPORT_STATUS_LABELS},
        )
    )
    return {
        row["label_id"]: {
            "total": row["total"], "reviewed": row["reviewed"], "mode2_errors": row["mode2_errors"],
            "analysed": row["analysed"], "rerun_pending": row["rerun_pending"],
            "by_status": {key: row[f"s_{key}"] for key in rules.EXPORT_STATUS_LABELS},
        }
        for row in rows
    }


def stored_counts(dataset) -> dict[int, dict]:
    counts = category_counts(category_ids=dataset.categories.values_list("pk", flat=True))
    return {
        category_id: {
            "total": c.total, "reviewed": c.reviewed, "mode2_errors": c.mode2_errors, "analysed": c.analysed,
            "rerun_pending": c.rerun_pending, "by_status": c.by_status,
        }
        for category_id, c in counts.items() if c.total
    }


def live_reasoning_counts(dataset) -> dict[tuple, tuple[int, int]]:
    limit = rules.length_limit()
    rows = (
        Reasoning.objects.filter(sample__dataset=dataset)
        .values("sample__label_id", "mode", "predicted_category_id", "is_correct")
        .annotate(n=Count("pk"), over=Count("pk", filter=Q(length__gt=limit)), length=Sum("length"))
    )
    return {(r["sample__label_id"], r["mode"], r["predicted_category_id"], r["is_correct"]): (r["n"], r["over"], r["length"])
            for r in rows}


def stored_reasoning_counts(dataset) -> dict[tuple, tuple[int, int]]:
    rows = (
        ReasoningCount.objects.filter(category__dataset=dataset, count__gt=0)
        .values("category_id", "mode", "predicted_id", "is_correct")
        .annotate(n=Sum("count"), over=Sum("count", filter=Q(over_limit=True)), length=Sum("length_sum"))
    )
    return {(r["category_id"], r["mode"], r["predicted_id"], r["is_correct"]): (r["n"], r["over"] or 0, r["length"])
            for r in rows}


def assert_counters_match(dataset):
    assert stored_counts(dataset) == live_counts(dataset)
    assert stored_reasoning_counts(dataset) == live_reasoning_counts(dataset)
    live = {row["pk"]: row for row in rules.with_status(Sample.objects.filter(dataset=dataset)).values(
        "pk", "live_export_status", "live_model_status", "live_mode2_error", "live_analysed")}
    for sample in Sample.objects.filter(dataset=dataset):
        row = live[sample.pk]
        assert (sample.export_status, sample.model_status, sample.mode2_error, sample.analysed) == (
            row["live_export_status"], row["live_model_status"], row["live_mode2_error"], row["live_analysed"]), sample
    assert not SampleCount.objects.filter(count__lt=0).exists()


def answer(name: str, length: int = 30) -> str:
    return "推理：" + "看" * max(length - 10, 1) + f"\n类别：{name}"


def test_counters_follow_every_kind_of_write(admin_user):
    rng = random.Random(5)
    dataset = DatasetFactory(name="counted")
    categories = [CategoryFactory(dataset=dataset, name=name, position=i) for i, name in enumerate(NAMES)]
    # An import: 30 samples with three modes, some wrong, long or unparseable.
    records = []
    for i in range(30):
        label = rng.choice(NAMES)
        outputs = {mode: answer(rng.choice(NAMES) if rng.random() < 0.3 else label, rng.choice([40, 90, 150]))
                   for mode in (1, 2, 3)}
        if i % 7 == 0:
            outputs[2] = "看不出是什么"
        if i % 11 == 0:
            del outputs[3]
        records.append(ClassificationRecord(external_id=f"c-{i:02d}", label=label, outputs=outputs))
    classification_records_save(dataset=dataset, records=records)
    assert_counters_match(dataset)

    samples = list(Sample.objects.filter(dataset=dataset).order_by("external_id"))
    # Reviews through the services: keep where keepable, causes, corrections, label errors.
    for sample in samples[:18]:
        status = rules.sample_status(sample.pk)
        if status.keepable:
            review_keep(sample=sample, user=admin_user, version=0)
        elif status.mode2_error:
            review_save(sample=sample, user=admin_user, cause=Cause.MODEL_WEAK,
                        corrected_output=answer(sample.label.name), label_error=False, suggested_label=None,
                        note="", version=0)
        else:
            other = next(c for c in categories if c.pk != sample.label_id)
            review_save(sample=sample, user=admin_user, cause=Cause.NONE, corrected_output="", label_error=True,
                        suggested_label=other, note="", version=0)
    assert_counters_match(dataset)

    # A re-import that relabels two samples and changes outputs (pending on reviewed samples).
    changed = [ClassificationRecord(external_id=r.external_id, label=NAMES[(NAMES.index(r.label) + 1) % 3]
                                    if i < 2 else r.label, outputs={3: answer(NAMES[0], 60), 2: answer(NAMES[1])})
               for i, r in enumerate(records[:20])]
    classification_records_save(dataset=dataset, records=changed)
    assert_counters_match(dataset)

    # A job's answers, accepting and discarding re-runs, a restore.
    reasonings_store(outputs=[ModelOutput(sample_id=s.pk, label_id=s.label_id, mode=1, output=answer(NAMES[2]))
                              for s in samples[20:]], category_ids={c.name: c.pk for c in categories})
    for i, sample in enumerate(Sample.objects.filter(dataset=dataset, rerun_pending=True)[:6]):
        reasoning_pending_decide(sample=sample, user=admin_user, accept=i % 2 == 0)
    review = Review.objects.filter(sample__dataset=dataset).first()
    review_save(sample=review.sample, user=admin_user, cause=Cause.DEFINITIONS_OVERLAP, corrected_output="",
                label_error=False, suggested_label=None, note="改", version=review.version)
    review_restore(edit=review.edits.order_by("version").first(), user=admin_user)
    assert_counters_match(dataset)

    # Single rows written and deleted directly (the admin, factories), a deleted sample.
    sample = SampleFactory(label=categories[0], external_id="by-hand")
    ReasoningFactory(sample=sample, mode=Mode.WITH_DEFINITIONS, predicted_category=categories[1], is_correct=False)
    ReviewFactory(sample=sample, cause=Cause.MODEL_WEAK)
    Reasoning.objects.filter(sample=samples[3], mode=Mode.FREE).first().delete()
    Review.objects.filter(sample=samples[4]).delete()
    samples[5].delete()
    assert_counters_match(dataset)


def _stored_state(dataset) -> tuple:
    """Every stored verdict column of the dataset's samples and reasonings, and every counter row."""
    samples = {s["external_id"]: s for s in Sample.objects.filter(dataset=dataset).values(
        "external_id", *STATUS_FIELDS, "label_suspicion", "sort_suspicion", "suspicion__score",
        "suspicion__suggested_category_id", "suspicion__evidence", "suspicion__fingerprint")}
    reasonings = dict(((r["sample__external_id"], r["mode"]), r["counted_key"]) for r in
                      Reasoning.objects.filter(sample__dataset=dataset).values("sample__external_id", "mode", "counted_key"))
    sample_counters = {tuple(row[:-1]): row[-1] for row in SampleCount.objects.filter(category__dataset=dataset, count__gt=0)
                       .values_list("category_id", *COUNT_DIMENSIONS, "count")}
    reasoning_counters = {tuple(row[:-2]): row[-2:] for row in ReasoningCount.objects.filter(
        category__dataset=dataset, count__gt=0).values_list("category_id", *REASONING_DIMENSIONS, "count", "length_sum")}
    return samples, reasonings, sample_counters, reasoning_counters


def test_samples_created_by_an_import_store_what_a_full_recompute_stores(settings):
    """New samples are written with their verdict and suspicion computed in memory
    (counts.new_sample_values, suspicion.suspicions_store_created) rather than written, read back
    and refreshed: every stored column, key, counter and score must be what recomputing everything
    from the rows gives, and the scores' fingerprints must find them current."""
    settings.TRAINSET_MAX_LENGTH = 100
    dataset = DatasetFactory(name="created")
    for i, name in enumerate(NAMES):
        CategoryFactory(dataset=dataset, name=name, position=i)
    kinds = {
        "right": lambda label: answer(label, 40), "wrong": lambda label: answer(NAMES[(NAMES.index(label) + 1) % 3], 40),
        "unparsed": lambda label: "看不出是什么", "too_long": lambda label: answer(label, 150),
        "two_classes": lambda label: f"类别：{NAMES[0]}\n类别：{NAMES[1]}",
    }
    records = []
    for n, (label, mode2, mode3) in enumerate(itertools.product(NAMES, [None, *kinds], [None, *kinds])):
        outputs = {1: answer(label, 30)} if n % 2 else {}
        if mode2:
            outputs[2] = kinds[mode2](label)
        if mode3:
            outputs[3] = kinds[mode3](label)
        # Image information naming a class's own words for some (the suspicion's fourth witness):
        # a description, or image_info whose keys PostgreSQL's jsonb stores in another order than
        # written ("a" before "zz"), which must not change what its values say ("货退" spans them).
        description = f"截图是{NAMES[n % 3]}页面，{NAMES[n % 3]}的按钮" if n % 4 == 0 else None
        image_info = {"zz": "退货", "a": "退款"} if n % 4 == 1 else None
        records.append(ClassificationRecord(external_id=f"n-{n:03d}", label=label, outputs=outputs,
                                            description=description, image_info=image_info))
    # The same new sample twice in one save: the later record's label is stored, and of its outputs
    # a different text replaces the earlier one's, the same text keeps the earlier record's.
    first = next(r for r in records if r.external_id == "n-011")
    records.append(ClassificationRecord(
        external_id="n-011", label=NAMES[1], outputs={3: answer(NAMES[1], 120), 2: first.outputs[2]},
        model_names={3: "second", 2: "second"}))
    result = classification_records_save(dataset=dataset, records=records)
    assert (result.samples_created, result.samples_updated) == (len(records) - 1, 0)
    assert result.reasonings_created == Reasoning.objects.filter(sample__dataset=dataset).count()

    written = _stored_state(dataset)
    assert written[0]["n-011"]["export_status"] == rules.TOO_LONG
    twice = Sample.objects.get(dataset=dataset, external_id="n-011")
    assert twice.label.name == NAMES[1]
    assert {r.mode: (r.output, r.model_name) for r in twice.reasonings.all()} == {
        1: (first.outputs[1], ""), 2: (first.outputs[2], ""), 3: (answer(NAMES[1], 120), "second")}
    assert any(row["suspicion__evidence"] and any(w["source"] == "info" for w in row["suspicion__evidence"])
               for sid, row in written[0].items() if int(sid[2:]) % 4 == 1)
    assert {row["suspicion__score"] > 0 for row in written[0].values()} == {True, False}
    assert suspicions_refresh(samples=Sample.objects.filter(dataset=dataset)) == 0  # every fingerprint current
    refresh_all()  # recomputes every stored verdict from the rows, and the counters from the keys
    LabelSuspicion.objects.filter(sample__dataset=dataset).delete()
    suspicions_refresh(samples=Sample.objects.filter(dataset=dataset))
    assert _stored_state(dataset) == written
    assert_counters_match(dataset)


def test_a_new_length_limit_recomputes_every_status(settings, admin_user):
    dataset = DatasetFactory(name="limits")
    category = CategoryFactory(dataset=dataset, name=NAMES[0])
    classification_records_save(dataset=dataset, records=[
        ClassificationRecord(external_id=f"l-{i}", label=NAMES[0], outputs={2: answer(NAMES[0]), 3: answer(NAMES[0], n)})
        for i, n in enumerate((50, 90, 120))
    ])
    assert category_counts(category_ids=[category.pk])[category.pk].by_status["too_long"] == 1
    settings.TRAINSET_MAX_LENGTH = 60
    counts = category_counts(category_ids=[category.pk])[category.pk]
    assert (counts.by_status["too_long"], counts.exported) == (2, 1)
    assert_counters_match(dataset)
    assert list(Sample.objects.filter(mode3_over=True).order_by("external_id").values_list("external_id", flat=True)) == [
        "l-1", "l-2"]
    refresh_all()
    assert_counters_match(dataset)


@pytest.mark.parametrize("exact_within", [None, 4])
@pytest.mark.parametrize("sort_key", list(QUEUE_SORTS))
def test_keyset_neighbours_walk_the_queue_in_order(sort_key, exact_within, admin_user, monkeypatch):
    """Every filter and sort: previous/next walk the queue's order, and the position shown is exact
    within `POSITION_EXACT_WITHIN` of either end; deeper in a big queue it says only that (counting
    a sample's place in a 100,000-sample class read up to 100,000 index entries per page)."""
    if exact_within is not None:
        monkeypatch.setattr(selectors, "POSITION_EXACT_WITHIN", exact_within)
    rng = random.Random(3)
    dataset = DatasetFactory(name="walk")
    categories = [CategoryFactory(dataset=dataset, name=name, position=i) for i, name in enumerate(NAMES)]
    records = [ClassificationRecord(
        external_id=f"w-{i:02d}", label=NAMES[0],
        outputs={2: answer(rng.choice(NAMES[:2])), 3: answer(rng.choice(NAMES[:2]), rng.choice([40, 40, 90, 150]))})
        for i in range(25)]
    classification_records_save(dataset=dataset, records=records)
    for sample in Sample.objects.filter(dataset=dataset)[:8]:
        review_save(sample=sample, user=admin_user, cause=Cause.MODEL_WEAK, corrected_output="", label_error=False,
                    suggested_label=None, note="", version=0)
    category = categories[0]
    for filter_key in queue_filters():
        expected = list(queue_samples(category=category, filter_key=filter_key, sort_key=sort_key)
                        .values_list("pk", flat=True))
        walked, current = [], Sample.objects.get(pk=expected[0]) if expected else None
        while current is not None:
            position = queue_position(sample=current, filter_key=filter_key, sort_key=sort_key)
            from_end = len(expected) - 1 - len(walked)
            if exact_within is None or min(len(walked), from_end) < exact_within:
                assert (position.index, position.beyond) == (len(walked), None), (filter_key, walked)
            else:
                assert (position.index, position.beyond) == (None, exact_within), (filter_key, walked)
            assert position.count == len(expected)
            assert position.previous_id == (walked[-1] if walked else None)
            walked.append(current.pk)
            current = Sample.objects.get(pk=position.next_id) if position.next_id else None
        assert walked == expected, (filter_key, sort_key)


@pytest.mark.parametrize("filter_key", ["mode2_wrong", "unanalysed"])
def test_a_sample_outside_mode2s_error_queue_has_neighbours_at_its_place_under_mode2_first(filter_key):
    """Every sample of mode 2's error queues sorts first under "模式2 错误优先", so those queues read
    by id, and so do the neighbours of a sample that is no longer in them (a rerun got mode 2
    right): the next one is the queue's first after it by id. Sorted by its mode-2 verdict, it had
    none, with more of the queue still ahead."""
    dataset = DatasetFactory(name="mode2-first")
    for i, name in enumerate(NAMES):
        CategoryFactory(dataset=dataset, name=name, position=i)
    wrong = {0, 2, 5, 7}
    classification_records_save(dataset=dataset, records=[ClassificationRecord(
        external_id=f"m-{i}", label=NAMES[0],
        outputs={2: answer(NAMES[1] if i in wrong else NAMES[0]), 3: answer(NAMES[0])}) for i in range(9)])
    by_id = {s.external_id: s for s in Sample.objects.filter(dataset=dataset)}
    ordered = queue_samples(category=by_id["m-0"].label, filter_key=filter_key, sort_key="mode2_wrong_first")
    queue = list(ordered.values_list("external_id", flat=True))
    assert queue == ["m-0", "m-2", "m-5", "m-7"]

    outside = queue_position(sample=by_id["m-3"], filter_key=filter_key, sort_key="mode2_wrong_first")
    assert (outside.previous_id, outside.next_id) == (by_id["m-2"].pk, by_id["m-5"].pk)
    assert (outside.index, outside.count) == (None, 4)
    inside = queue_position(sample=by_id["m-5"], filter_key=filter_key, sort_key="mode2_wrong_first")
    assert (inside.previous_id, inside.next_id, inside.index) == (by_id["m-2"].pk, by_id["m-7"].pk, 2)


def test_a_reviewed_sample_has_neighbours_at_its_place_in_unreviewed_under_recently_reviewed(admin_user):
    """Every unreviewed sample sorts alike under "最近审核" (it has no review time), so 未审核 reads
    by id, and so do the neighbours of a reviewed sample opened under it: the queue's samples
    either side of it by id. Sorted by review time it had no previous one, its next was the queue's
    first, and PostgreSQL read the class's reviewed rows looking for them."""
    dataset = DatasetFactory(name="unreviewed-recent")
    for i, name in enumerate(NAMES):
        CategoryFactory(dataset=dataset, name=name, position=i)
    classification_records_save(dataset=dataset, records=[ClassificationRecord(
        external_id=f"u-{i}", label=NAMES[0], outputs={2: answer(NAMES[0]), 3: answer(NAMES[0])})
        for i in range(7)])
    by_id = {s.external_id: s for s in Sample.objects.filter(dataset=dataset)}
    for external_id in ("u-1", "u-3", "u-4"):
        review_save(sample=by_id[external_id], user=admin_user, cause=Cause.MODEL_WEAK, corrected_output="",
                    label_error=False, suggested_label=None, note="", version=0)
    reviewed = Sample.objects.get(pk=by_id["u-3"].pk)
    ordered = queue_samples(category=reviewed.label, filter_key="unreviewed", sort_key="recently_reviewed")
    assert list(ordered.values_list("external_id", flat=True)) == ["u-0", "u-2", "u-5", "u-6"]

    outside = queue_position(sample=reviewed, filter_key="unreviewed", sort_key="recently_reviewed")
    assert (outside.previous_id, outside.next_id) == (by_id["u-2"].pk, by_id["u-5"].pk)
    assert (outside.index, outside.count) == (None, 4)


def test_a_sample_under_an_empty_queue_looks_for_no_neighbours():
    """模型已重跑 is mostly empty: the sample page then shows no place and no neighbours without
    searching the class for them (each search read the class's whole index on SQLite)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    dataset = DatasetFactory(name="empty-queue")
    for i, name in enumerate(NAMES):
        CategoryFactory(dataset=dataset, name=name, position=i)
    classification_records_save(dataset=dataset, records=[ClassificationRecord(
        external_id=f"e-{i}", label=NAMES[0], outputs={2: answer(NAMES[0]), 3: answer(NAMES[0])}) for i in range(5)])
    sample = Sample.objects.get(external_id="e-2")
    for sort_key in QUEUE_SORTS:
        with CaptureQueriesContext(connection) as queries:
            position = queue_position(sample=sample, filter_key="rerun", sort_key=sort_key)
        assert (position.index, position.count, position.previous_id, position.next_id) == (None, 0, None, None)
        searches = [q["sql"] for q in queries.captured_queries if '"rerun_pending"' in q["sql"]
                    and 'FROM "review_sample"' in q["sql"]]
        assert searches == [], sort_key


def test_counters_follow_a_streamed_batched_and_resumed_import(tmp_path, settings, monkeypatch, admin_user):
    """import_classification writes in batches, each through classification_records_save; an import
    interrupted between batches, reviews meanwhile, the import run again and a changed re-import
    leave the counters equal to a recount after every step."""
    import json

    from review.importing import import_classification, importer
    from review.models import Dataset

    settings.IMPORT_BATCH_SAMPLES = 7
    rng = random.Random(11)
    root = tmp_path / "in"
    root.mkdir()
    (root / "categories.json").write_text(json.dumps({name: "" for name in NAMES}, ensure_ascii=False), encoding="utf-8")

    def write(relabel: int = 0, mode3_length: int = 40):
        lines = []
        for i in range(40):
            label = NAMES[(i + (1 if i < relabel else 0)) % 3]
            outputs = {str(mode): answer(rng.choice(NAMES) if rng.random() < 0.3 else label, rng.choice([40, 90, 150]))
                       for mode in (1, 2)}
            outputs["3"] = answer(label, mode3_length if i % 4 else 130)
            if i % 9 == 0:
                outputs["2"] = "看不出是什么"
            lines.append(json.dumps({"id": f"s-{i:02d}", "label": label, "outputs": outputs}, ensure_ascii=False))
        (root / "m.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    write()
    original, calls = importer.classification_records_save, []

    def interrupted(**kwargs):
        calls.append(len(kwargs["records"]))
        if len(calls) == 3:
            raise RuntimeError("interrupted")
        return original(**kwargs)

    monkeypatch.setattr(importer, "classification_records_save", interrupted)
    with pytest.raises(RuntimeError):
        import_classification(path=root, dataset_name="streamed")
    monkeypatch.setattr(importer, "classification_records_save", original)
    dataset = Dataset.objects.get(name="streamed")
    assert Sample.objects.filter(dataset=dataset).count() == 14
    assert_counters_match(dataset)

    for sample in Sample.objects.filter(dataset=dataset).order_by("external_id")[:10]:
        status = rules.sample_status(sample.pk)
        if status.keepable:
            review_keep(sample=sample, user=admin_user, version=0)
        else:
            review_save(sample=sample, user=admin_user, cause=Cause.MODEL_WEAK if status.mode2_error else Cause.NONE,
                        corrected_output="", label_error=False, suggested_label=None, note="", version=0)
    assert_counters_match(dataset)

    report = import_classification(path=root, dataset_name="streamed")  # the same files: it finishes
    assert report.samples_imported == 40 and Sample.objects.filter(dataset=dataset).count() == 40
    assert_counters_match(dataset)

    write(relabel=12, mode3_length=90)  # new labels for some, new outputs (pending on the reviewed ones)
    report = import_classification(path=root, dataset_name="streamed")
    assert report.saved.samples_updated == 12 and report.saved.reasonings_pending > 0
    assert_counters_match(dataset)


@pytest.mark.parametrize("sort_key", [key for key, (_, column) in QUEUE_SORTS.items() if column])
def test_a_place_deep_in_a_sorted_queue_is_found_with_one_search_each_way(sort_key, admin_user, monkeypatch):
    """The samples before a sample under a sort are one range, (sort value, id) < its own: each
    direction's count and its neighbour are one query each, whatever the sort values around it.
    Searched as two ranges (its own value with a smaller id, then smaller values) a sample's page
    paid up to twice the queries, ~1 ms each on PostgreSQL."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(selectors, "POSITION_EXACT_WITHIN", 3)  # deep: both directions are counted
    dataset = DatasetFactory(name="one-range")
    for i, name in enumerate(NAMES):
        CategoryFactory(dataset=dataset, name=name, position=i)
    # Two values of every sort column (mode 2 right or wrong, two lengths, reviewed or not),
    # alternating by id: the queue's middle holds a change of value.
    classification_records_save(dataset=dataset, records=[ClassificationRecord(
        external_id=f"o-{i:02d}", label=NAMES[0],
        outputs={2: answer(NAMES[i % 2]), 3: answer(NAMES[0], 40 + 10 * (i % 2))}) for i in range(16)])
    for sample in Sample.objects.filter(dataset=dataset).order_by("external_id")[::2]:
        review_save(sample=sample, user=admin_user, cause=Cause.MODEL_WEAK, corrected_output="",
                    label_error=False, suggested_label=None, note="", version=0)
    category = Category.objects.get(dataset=dataset, name=NAMES[0])
    expected = list(queue_samples(category=category, filter_key="all", sort_key=sort_key)
                    .values_list("pk", flat=True))
    for place in range(4, 12):
        sample = Sample.objects.get(pk=expected[place])
        with CaptureQueriesContext(connection) as queries:
            position = queue_position(sample=sample, filter_key="all", sort_key=sort_key)
        assert (position.index, position.beyond) == (None, 3)
        assert (position.previous_id, position.next_id) == (expected[place - 1], expected[place + 1])
        searches = [q["sql"] for q in queries.captured_queries if 'FROM "review_sample"' in q["sql"]]
        assert len(searches) == 4, (sort_key, place, searches)  # a count and a neighbour each way
