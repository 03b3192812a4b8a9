"""Exports under concurrent edits (real database, PostgreSQL in CI): one consistent snapshot, and
the same bytes when nothing changed."""
import hashlib
import json
import random
import threading
import time

import pytest
from django.db import connection, transaction

from review.exports import export_file_path, trainset_export, write_trainset
from review.models import Cause, Mode, Reasoning, Review, Sample
from tests.factories import CategoryFactory, DatasetFactory

pytestmark = pytest.mark.django_db(transaction=True)

PAIRS = 300
FILLER = 3000  # rows that make the export take long enough to overlap many edits


def build_dataset():
    """Pairs (A_i, B_i) of which exactly one is marked as a label error, plus filler samples."""
    dataset = DatasetFactory(name="snapshot")
    first = CategoryFactory(dataset=dataset, name="商品分类选项", position=0)
    second = CategoryFactory(dataset=dataset, name="换货", position=1)
    samples = [Sample(dataset=dataset, label=first, external_id=f"a-{i:04d}") for i in range(PAIRS)]
    samples += [Sample(dataset=dataset, label=second, external_id=f"b-{i:04d}") for i in range(PAIRS)]
    samples += [Sample(dataset=dataset, label=second, external_id=f"f-{i:05d}") for i in range(FILLER)]
    Sample.objects.bulk_create(samples, batch_size=1000)
    samples = list(Sample.objects.filter(dataset=dataset).select_related("label"))
    Reasoning.objects.bulk_create(
        [Reasoning(sample=s, mode=Mode.LIMITED, output=f"图片显示{s.label.name}相关内容。", predicted_category=s.label,
                   predicted_name=s.label.name, is_correct=True, length=12) for s in samples],
        batch_size=1000,
    )
    Review.objects.bulk_create(
        [Review(sample=s, label_error=s.external_id.startswith("a-"), cause=Cause.NONE, version=1)
         for s in samples if not s.external_id.startswith("f-")],
        batch_size=1000,
    )
    by_id = {s.external_id: s for s in samples}
    return dataset, [(by_id[f"a-{i:04d}"], by_id[f"b-{i:04d}"]) for i in range(PAIRS)]


class PairSwapper(threading.Thread):
    """Reviewers moving the label error from one sample of a pair to the other, both rows in one
    transaction, as fast as possible until stopped (plain row updates: the export is under test)."""

    def __init__(self, pairs):
        super().__init__(daemon=True)
        self.pairs = pairs
        self.stop_event = threading.Event()
        self.swaps = 0
        self.error: Exception | None = None

    def run(self):
        try:
            while not self.stop_event.is_set():
                a, b = random.choice(self.pairs)
                with transaction.atomic():
                    for review in Review.objects.select_for_update().filter(sample__in=[a, b]).order_by("pk"):
                        Review.objects.filter(pk=review.pk).update(
                            label_error=not review.label_error, version=review.version + 1)
                self.swaps += 1
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            connection.close()


def read_export(path):
    ids = {json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    return ids


def test_an_export_taken_while_reviewers_edit_is_one_consistent_snapshot(tmp_path):
    dataset, pairs = build_dataset()
    swapper = PairSwapper(pairs)
    swapper.start()
    try:
        deadline = time.monotonic() + 30
        while swapper.swaps < 5 and time.monotonic() < deadline and swapper.error is None:
            time.sleep(0.05)
        for attempt in range(4):
            before = swapper.swaps
            path = tmp_path / f"export-{attempt}.jsonl"
            report = write_trainset(dataset=dataset, fmt="jsonl", path=path)
            during = swapper.swaps - before
            exported = read_export(path)
            errors = {sid for ids in report.label_errors.values() for sid, _ in ids}
            torn = [(a.external_id, b.external_id) for a, b in pairs
                    if len({a.external_id, b.external_id} & errors) != 1
                    or len({a.external_id, b.external_id} & exported) != 1]
            assert not torn, f"export {attempt} mixed states from before and after {len(torn)} edits: {torn[:5]}"
            assert len(errors) == PAIRS and len(exported) == PAIRS + FILLER
            assert during > 0, "no edit overlapped the export; the test proves nothing"
    finally:
        swapper.stop_event.set()
        swapper.join(timeout=30)
    assert swapper.error is None, swapper.error


def test_the_same_export_twice_on_unchanged_data_is_byte_identical(tmp_path, settings):
    dataset, _pairs = build_dataset()
    for fmt in ("jsonl", "alpaca", "sharegpt"):
        first = trainset_export(dataset=dataset, fmt=fmt)
        second = trainset_export(dataset=dataset, fmt=fmt)
        assert first.path != second.path
        digest = [hashlib.sha256(export_file_path(e).read_bytes()).hexdigest() for e in (first, second)]
        assert digest[0] == digest[1], fmt
        assert first.row_count == second.row_count == PAIRS + FILLER
