"""Every importer refuses an over-long record on its own line, naming IMPORT_MAX_RECORD_CHARS, and
imports the rest (issue 17: "an import line of 60 MB is stored and rendered whole")."""
import json

import pytest

from pipelines.datasets.feedback import read_feedback_file
from pipelines.generation.services import source_items_import
from pipelines.datasets.logs import FileReport, iter_log_file

pytestmark = pytest.mark.django_db
HUGE = "长" * 5_000


@pytest.fixture(autouse=True)
def small_bound(settings):
    settings.IMPORT_MAX_RECORD_CHARS = 2_000


def test_generation_sources():
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"id": "ok", "image": "a.png", "wiki_title": "故宫"},
        {"id": "big", "image": "b.png", "wiki_title": "长城", "facts": [HUGE]},
    ])
    report = source_items_import(text=text, collection="c")
    assert report.created == 1 and [p.line for p in report.problems] == [2]
    assert "IMPORT_MAX_RECORD_CHARS" in report.problems[0].message


def test_feedback(tmp_path):
    path = tmp_path / "feedback.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"instruction": "问", "output": "答", "rating": 5},
        {"instruction": "问", "output": HUGE, "rating": 5},
    ]) + "\n", encoding="utf-8")
    entries, report = read_feedback_file(path)
    assert len(entries) == 1
    assert [(str(p["line"]), p["reason"]) for p in report["problems"]] == [("2", "too_large")]
    assert "IMPORT_MAX_RECORD_CHARS" in report["problems"][0]["detail"]


def test_call_logs(tmp_path):
    path = tmp_path / "calls.jsonl"
    lines = [{"success": True, "prompt": "p", "response": {"answer": "a"}},
             {"success": True, "prompt": HUGE, "response": {"answer": "a"}}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in lines) + "\n", encoding="utf-8")
    report = FileReport()
    assert [n for n, _ in iter_log_file(path, report)] == [1]
    assert [(p["line"], p["reason"]) for p in report.problems] == [(2, "too_large")]
    assert "IMPORT_MAX_RECORD_CHARS" in report.problems[0]["detail"]
