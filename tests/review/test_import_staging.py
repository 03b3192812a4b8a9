"""The import's scratch file: reading a file stages its records without visiting the others'."""
import json

from review.importing.importer import ClassificationImport


def test_reading_a_file_does_not_visit_the_records_staged_before_it(tmp_path):
    """Reading a file first clears what an earlier reading of it staged. That must go by the file's
    own records: a scan of every record staged so far, for every file, made reading quadratic in
    the import's size (10 % of a 100,000-sample import). Counted in SQLite's own steps, not time."""
    root = tmp_path / "in"
    root.mkdir()
    lines = [json.dumps({"id": f"s{i}", "label": "换货", "outputs": {"1": "推理\n类别：换货"}}, ensure_ascii=False)
             for i in range(20_000)]
    (root / "a.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "b.jsonl").write_text(lines[0] + "\n", encoding="utf-8")
    job = ClassificationImport(path=root, dataset_name="d", staging_path=tmp_path / "staging.sqlite3")
    try:
        files = [f.rel for f in job.files]
        assert files == ["a.jsonl", "b.jsonl"]
        assert job.read_file(0) == 20_000
        steps = []
        job.staging.db.set_progress_handler(lambda: steps.append(1) and 0, 1000)
        assert job.read_file(1) == 1
        job.staging.db.set_progress_handler(None, 0)
        # Staging one record takes a few thousand steps; scanning 20,000 took some hundred thousand.
        assert len(steps) < 20
        assert job.read_file(0) == 20_000  # read again: its records replaced, not added
        assert job.staging.db.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 20_001
    finally:
        job.close()
