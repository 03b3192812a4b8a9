"""import_classification writes in short batches: reviewers keep saving while it runs, an interrupted
import keeps what it committed and finishes when run again, and long reports stay readable.

Transactional tests (real commits, a second thread with its own connection), on SQLite and PostgreSQL.
"""
import json
import threading
import time

import pytest
from django.db import connection, transaction

from review.importing import import_classification, importer
from review.models import Category, Reasoning, Review, Sample
from review.services import review_save
from tests.factories import AssignmentFactory, UserFactory

DEADLINE = 30  # seconds: a wait that takes this long has failed


def write_manifest(path, ids, label="换货页面", mode3="简短"):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": i, "label": label, "outputs": {"1": f"自由 {i}\n类别：{label}", "2": f"分析 {i}\n类别：{label}",
                                                            "3": f"{mode3} {i}\n类别：{label}"}}, ensure_ascii=False)
             for i in ids]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def recording_saves(monkeypatch, after_call=None):
    """Wrap the importer's one write (classification_records_save): each call's size and whether it
    ran inside a transaction opened by someone else; `after_call(n)` runs after call n returned."""
    calls = []
    original = importer.classification_records_save

    def wrapper(**kwargs):
        calls.append((len(kwargs["records"]), connection.in_atomic_block))
        result = original(**kwargs)
        if after_call is not None:
            after_call(len(calls))
        return result

    monkeypatch.setattr(importer, "classification_records_save", wrapper)
    return calls


def import_in_background(path):
    """import_classification into "scenes" in a thread of its own (its own connection): the thread,
    started, and its outcome ({"report": …} or {"error": …}) once it ends."""
    outcome = {}

    def run_import():
        try:
            outcome["report"] = import_classification(path=path, dataset_name="scenes")
        except Exception as exc:  # noqa: BLE001 - reported by the callers' assertions
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run_import)
    thread.start()
    return thread, outcome


@pytest.mark.django_db(transaction=True)
def test_a_reviewer_saves_while_an_import_runs(tmp_path, settings, monkeypatch):
    settings.IMPORT_BATCH_SAMPLES = 5
    import_classification(path=write_manifest(tmp_path / "first.jsonl", ["a-0", "a-1"]), dataset_name="scenes",
                          create_classes=True)
    reviewer = UserFactory(username="reviewer1")
    AssignmentFactory(reviewer=reviewer, category=Category.objects.get(name="换货页面"))
    big = write_manifest(tmp_path / "second.jsonl", [f"b-{i:02d}" for i in range(30)])

    first_batch_written, reviewer_done = threading.Event(), threading.Event()
    waited = []

    def pause_after_first(n):
        if n == 1:
            first_batch_written.set()
            waited.append(reviewer_done.wait(timeout=DEADLINE))

    calls = recording_saves(monkeypatch, pause_after_first)
    thread, outcome = import_in_background(big)
    try:
        assert first_batch_written.wait(timeout=DEADLINE)
        committed = Sample.objects.filter(external_id__startswith="b-").count()
        sample = Sample.objects.get(external_id="a-0")
        review_save(sample=sample, user=reviewer, cause="", corrected_output="", label_error=False,
                    suggested_label=None, note="导入时审核", version=0)
        reviewer_done.set()
    finally:
        reviewer_done.set()
        thread.join(timeout=DEADLINE)
    assert not thread.is_alive() and "error" not in outcome, outcome
    # The import was still waiting after its first batch when the reviewer's save went through,
    # and that batch was already committed: it held no transaction meanwhile.
    assert waited == [True]
    assert 0 < committed < 30
    assert outcome["report"].samples_imported == 30
    assert Sample.objects.filter(external_id__startswith="b-").count() == 30
    assert Review.objects.get(sample__external_id="a-0").note == "导入时审核"
    assert all(size <= 5 and not outer for size, outer in calls), calls


@pytest.mark.django_db(transaction=True)
def test_every_batch_is_its_own_transaction(tmp_path, settings, monkeypatch):
    settings.IMPORT_BATCH_SAMPLES = 4
    calls = recording_saves(monkeypatch)
    report = import_classification(path=write_manifest(tmp_path / "m.jsonl", [f"s-{i}" for i in range(23)]),
                                   dataset_name="scenes", create_classes=True)
    assert report.samples_imported == 23 and sum(size for size, _ in calls) == 23
    assert len(calls) >= 6 and all(size <= 4 for size, _ in calls)
    assert not any(outer for _, outer in calls)  # nobody holds a transaction around them
    assert Reasoning.objects.count() == 69


@pytest.mark.django_db(transaction=True)
def test_an_interrupted_import_keeps_its_batches_and_finishes_when_run_again(tmp_path, settings, monkeypatch):
    settings.IMPORT_BATCH_SAMPLES = 4
    manifest = write_manifest(tmp_path / "m.jsonl", [f"s-{i:02d}" for i in range(12)])

    def crash_on_second(n):
        if n == 2:
            raise RuntimeError("the machine went down")

    recording_saves(monkeypatch, crash_on_second)
    with pytest.raises(RuntimeError):
        import_classification(path=manifest, dataset_name="scenes", create_classes=True)
    monkeypatch.undo()
    kept = set(Sample.objects.values_list("external_id", flat=True))
    assert 0 < len(kept) < 12 and Reasoning.objects.count() == 3 * len(kept)

    # Meanwhile a reviewer judges one of the committed samples.
    reviewer = UserFactory(username="reviewer1")
    AssignmentFactory(reviewer=reviewer, category=Category.objects.get(name="换货页面"))
    reviewed = Sample.objects.get(external_id=sorted(kept)[0])
    review_save(sample=reviewed, user=reviewer, cause="none", corrected_output="", label_error=False,
                suggested_label=None, note="", version=0)

    report = import_classification(path=manifest, dataset_name="scenes")
    assert report.samples_imported == 12 and report.problems == []
    assert report.saved.samples_created == 12 - len(kept) and report.saved.samples_updated == 0
    assert report.saved.reasonings_created == 3 * (12 - len(kept)) and report.saved.reasonings_updated == 0
    assert Sample.objects.count() == 12 and Reasoning.objects.count() == 36
    assert Review.objects.get(sample=reviewed).cause == "none"

    # Run once more with a changed mode-3 output: the reviewed sample's waits for its reviewer.
    write_manifest(tmp_path / "m.jsonl", [f"s-{i:02d}" for i in range(12)], mode3="改过")
    again = import_classification(path=manifest, dataset_name="scenes")
    assert again.saved.reasonings_pending == 1 and again.saved.reasonings_updated == 12
    assert Reasoning.objects.get(sample=reviewed, mode=3).output.startswith("简短")


@pytest.mark.django_db
def test_a_long_list_of_problems_is_counted_in_full_and_listed_in_part(tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "MAX_LISTED_FINDINGS", 3)
    path = write_manifest(tmp_path / "m.jsonl", ["ok"])
    with path.open("a", encoding="utf-8") as fh:
        fh.write("".join("{broken\n" for _ in range(7)))
    report = import_classification(path=path, dataset_name="scenes", create_classes=True)
    assert report.samples_imported == 1
    assert [p.location for p in report.problems] == ["m.jsonl:2", "m.jsonl:3", "m.jsonl:4"]
    assert report.problems_total == 7
    assert "问题 7 个（列出前 3 个）：" in report.summary_lines()


@pytest.mark.django_db
def test_the_import_reports_its_progress(tmp_path, settings):
    settings.IMPORT_BATCH_SAMPLES = 3
    seen = []
    import_classification(path=write_manifest(tmp_path / "m.jsonl", [f"s-{i}" for i in range(7)]), dataset_name="scenes",
                          create_classes=True, progress=lambda p: seen.append((p.phase, p.done, p.total)))
    size = (tmp_path / "m.jsonl").stat().st_size
    assert seen == [("read", size, size), ("save", 3, 7), ("save", 6, 7), ("save", 7, 7)]


@pytest.mark.django_db(transaction=True)
def test_a_failed_write_leaves_no_half_batch(tmp_path, settings, monkeypatch):
    settings.IMPORT_BATCH_SAMPLES = 50
    from review.services import records

    original = records.reasonings_store

    def broken(**kwargs):
        original(**kwargs)
        raise RuntimeError("disk full")

    monkeypatch.setattr(records, "reasonings_store", broken)
    with pytest.raises(RuntimeError):
        import_classification(path=write_manifest(tmp_path / "m.jsonl", ["a", "b"]), dataset_name="scenes",
                              create_classes=True)
    assert not Sample.objects.exists() and not Reasoning.objects.exists()
    assert transaction.get_autocommit()


@pytest.mark.django_db(transaction=True)
def test_a_reviewer_saves_between_the_transactions_of_an_import_running_flat_out(tmp_path, settings, monkeypatch):
    """Nothing pauses this import: its write transactions follow one another as fast as they can,
    each held a while as a large batch's is. A reviewer's save goes through as soon as the import's
    transaction in progress ends, before its next one. (On SQLite the import used to take the file's
    one write lock again at once after each commit: a save waited for the whole import or failed
    with "database is locked".)"""
    settings.IMPORT_BATCH_SAMPLES = 2
    import_classification(path=write_manifest(tmp_path / "first.jsonl", ["a-0"]), dataset_name="scenes",
                          create_classes=True)
    reviewer = UserFactory(username="reviewer1")
    AssignmentFactory(reviewer=reviewer, category=Category.objects.get(name="换货页面"))
    big = write_manifest(tmp_path / "second.jsonl", [f"b-{i:02d}" for i in range(40)])

    original = importer.classification_records_save
    begun, writing = [], threading.Event()

    def held_save(**kwargs):
        with transaction.atomic():
            begun.append(True)
            result = original(**kwargs)
            writing.set()
            time.sleep(0.15)  # the transaction of a large batch: the write lock stays taken meanwhile
        return result

    monkeypatch.setattr(importer, "classification_records_save", held_save)
    thread, outcome = import_in_background(big)
    try:
        assert writing.wait(timeout=DEADLINE)
        begun_before = len(begun)
        review_save(sample=Sample.objects.get(external_id="a-0"), user=reviewer, cause="", corrected_output="",
                    label_error=False, suggested_label=None, note="导入时审核", version=0)
        begun_meanwhile = len(begun) - begun_before
    finally:
        thread.join(timeout=DEADLINE)
    assert not thread.is_alive() and "error" not in outcome, outcome
    # At most one more import transaction began: one that started just as the reviewer arrived.
    assert begun_meanwhile <= 1, f"{begun_meanwhile} import transactions went first"
    assert outcome["report"].samples_imported == 40
    assert Review.objects.get(sample__external_id="a-0").note == "导入时审核"


def _planner_row_estimates(*tables: str) -> dict[str, float]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reltuples FROM pg_class WHERE relname = ANY(%s)", [list(tables)])
        return dict(cursor.fetchall())


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite's planner uses the indexes without statistics")
@pytest.mark.django_db(transaction=True)
def test_a_large_import_keeps_postgresqls_statistics_current(tmp_path, settings, monkeypatch):
    """A table that grows from empty within one import was planned as if it were tiny: every
    chunk's lookup of 500 samples' reasonings scanned the whole table (45 ms at 300,000 rows instead
    of 0.7 ms), and a 100,000-sample import on PostgreSQL spent most of its time waiting. The
    import refreshes the statistics as the tables grow (here from 20 samples, and at each doubling)."""
    settings.IMPORT_BATCH_SAMPLES = 10
    monkeypatch.setattr(importer, "ANALYZE_FROM", 20, raising=False)
    import_classification(path=write_manifest(tmp_path / "m.jsonl", [f"s-{i}" for i in range(100)]),
                          dataset_name="scenes", create_classes=True)
    estimates = _planner_row_estimates("review_sample", "review_reasoning", "review_labelsuspicion")
    assert estimates["review_sample"] >= 50 and estimates["review_labelsuspicion"] >= 50
    assert estimates["review_reasoning"] >= 150
