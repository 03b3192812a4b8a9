"""User feedback: reading rated conversations, the seed's outputs, the import job, and the review
service (accept / edit / reject with a version check)."""
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from pipelines.datasets import feedback
from pipelines.datasets.selectors import feedback_records
from pipelines.datasets.services import feedback_sample_decide
from pipelines.jobs.services import job_create, run_job_inline
from pipelines.models import FeedbackSample, JobKind, JobStatus, ReviewDecision
from core.errors import ApplicationError
from tests.factories import UserFactory
from tests.pipelines.datasets.source_files import FEEDBACK_ENTRIES, write_feedback_file

SEED_FIELDS = ["instruction", "input", "output", "rating", "model_name", "feedback_id", "timestamp"]


def test_read_filters_by_min_rating_and_model(tmp_path):
    path = write_feedback_file(tmp_path / "fb.jsonl")
    entries, report = feedback.read_feedback_file(path)
    assert [e["feedback_id"] for e in entries] == ["fb-1", "fb-2", "fb-4"]
    assert report["dropped"] == {"below_min_rating": 1}
    entries, report = feedback.read_feedback_file(path, min_rating=5, model_name="huanhuan-qwen")
    assert [e["feedback_id"] for e in entries] == ["fb-1"]
    assert report["dropped"] == {"below_min_rating": 2, "other_model": 1}


def test_json_array_and_wrapped_object_are_read(tmp_path):
    array = write_feedback_file(tmp_path / "fb.json", jsonl=False)
    assert len(feedback.read_feedback_file(array)[0]) == 3
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"feedback": FEEDBACK_ENTRIES}, ensure_ascii=False, indent=2), encoding="utf-8")
    assert len(feedback.read_feedback_file(wrapped)[0]) == 3


def test_bad_entries_are_reported_with_their_line_and_the_rest_imported(tmp_path):
    bad = [
        '{"instruction": "坏行"',
        json.dumps({"instruction": "评分不对", "output": "x", "rating": 7, "feedback_id": "b1"}),
        json.dumps({"instruction": "", "output": "x", "rating": 5, "feedback_id": "b2"}),
        json.dumps({"question": "别名字段", "answer": "可以读", "score": "5", "model": "m"}),
        json.dumps(FEEDBACK_ENTRIES[0], ensure_ascii=False),  # duplicate id
    ]
    path = write_feedback_file(tmp_path / "fb.jsonl", extra_lines=bad)
    with open(path, "ab") as fh:
        fh.write("编码错误".encode("gbk") + b"\n")
    entries, report = feedback.read_feedback_file(path)
    assert len(entries) == 4  # three good + the alias one
    alias = entries[-1]
    assert (alias["instruction"], alias["output"], alias["rating"], alias["model_name"]) == ("别名字段", "可以读", 5, "m")
    assert alias["feedback_id"].startswith("fb-")
    problems = {(p["reason"], p["line"]) for p in report["problems"]}
    assert problems == {("malformed_json", "5"), ("bad_rating", "6"), ("no_instruction", "7"),
                        ("duplicate_id", "9"), ("encoding", "10")}


def test_missing_file_and_bad_threshold_are_clear_errors(tmp_path):
    with pytest.raises(ApplicationError, match="反馈文件不存在"):
        feedback.read_feedback_file(tmp_path / "none.json")
    with pytest.raises(ApplicationError, match="1–5"):
        feedback.read_feedback_file(write_feedback_file(tmp_path / "f.jsonl"), min_rating=6)


def test_outputs_have_the_seed_shapes(tmp_path):
    entries, _ = feedback.read_feedback_file(write_feedback_file(tmp_path / "fb.jsonl"))
    written = feedback.write_feedback_outputs(entries, tmp_path / "out")
    full = json.loads((tmp_path / "out" / "training_samples.json").read_text(encoding="utf-8"))
    assert [list(r) for r in full] == [SEED_FIELDS] * 3
    assert full[0] == {**FEEDBACK_ENTRIES[0]}
    lines = (tmp_path / "out" / "training_samples.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == full
    alpaca = json.loads((tmp_path / "out" / "alpaca_training_samples.json").read_text(encoding="utf-8"))
    assert alpaca[1] == {"instruction": "今天天气怎么样", "input": "北京", "output": "今日晴好，宜出游。"}
    assert set(written) == {"json", "jsonl", "alpaca"}
    assert "臣妾是甄嬛" in (tmp_path / "out" / "training_samples.jsonl").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- import job + command

@pytest.mark.django_db
def test_import_job_creates_samples_and_keeps_reviews_on_reimport(tmp_path, reviewer):
    path = write_feedback_file(tmp_path / "fb.jsonl")
    job = run_job_inline(job_create(kind=JobKind.FEEDBACK_IMPORT, params={"feedback_file": str(path)}))
    assert job.status == JobStatus.DONE
    assert job.report["created"] == 3 and job.report["dropped"] == {"below_min_rating": 1}
    sample = FeedbackSample.objects.get(feedback_id="fb-2")
    assert (sample.instruction, sample.input, sample.rating, sample.model_name) == ("今天天气怎么样", "北京", 4, "huanhuan-qwen")
    # Naive timestamps are read in the project's time zone (Asia/Shanghai).
    assert timezone.localtime(sample.rated_at).strftime("%Y-%m-%d %H:%M") == "2025-01-03 11:00"
    feedback_sample_decide(sample=sample, user=reviewer, decision="rejected", version=sample.version)
    again = run_job_inline(job_create(kind=JobKind.FEEDBACK_IMPORT, params={"feedback_file": str(path), "min_rating": 1}))
    assert again.report["created"] == 1 and again.report["already_imported"] == 3
    assert FeedbackSample.objects.get(feedback_id="fb-2").decision == ReviewDecision.REJECTED


@pytest.mark.django_db
def test_import_feedback_command_flags(tmp_path):
    path = write_feedback_file(tmp_path / "fb.jsonl")
    out = StringIO()
    call_command("import_feedback", "--feedback-file", str(path), "--output-dir", str(tmp_path / "out"),
                 "--min-rating", "5", "--format", "json", "alpaca", "--model-name", "huanhuan-qwen", stdout=out)
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name.endswith(".json")) == [
        "alpaca_training_samples.json", "alpaca_training_samples_report.json", "dataset_info.json", "training_samples.json"]
    assert [r["feedback_id"] for r in json.loads((tmp_path / "out" / "training_samples.json").read_text())] == ["fb-1"]
    assert list(FeedbackSample.objects.values_list("feedback_id", flat=True)) == ["fb-1"]
    assert "新增 1 条" in out.getvalue()


@pytest.mark.django_db
def test_import_feedback_command_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_feedback_file(tmp_path / "fb.jsonl")
    call_command("import_feedback", "--feedback-file", str(path), "--no-import", stdout=StringIO())
    out = tmp_path / "data" / "training_samples"
    assert {"training_samples.json", "training_samples.jsonl", "alpaca_training_samples.json"} <= {p.name for p in out.iterdir()}
    assert len(json.loads((out / "training_samples.json").read_text(encoding="utf-8"))) == 3  # min rating 4
    assert FeedbackSample.objects.count() == 0


def test_import_feedback_command_refuses_bad_input(tmp_path):
    with pytest.raises(CommandError, match="反馈文件不存在"):
        call_command("import_feedback", "--feedback-file", str(tmp_path / "none.jsonl"), stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("import_feedback", "--feedback-file", "x", "--min-rating", "9", stdout=StringIO())


# --------------------------------------------------------------------------- review service

@pytest.fixture
def sample(db):
    return FeedbackSample.objects.create(feedback_id="s1", instruction="问题", output="原回答", rating=5, model_name="m")


def test_accept_edit_reject_bump_the_version(sample, reviewer):
    sample = feedback_sample_decide(sample=sample, user=reviewer, decision="accepted", version=1)
    assert (sample.decision, sample.version, sample.decided_by) == (ReviewDecision.ACCEPTED, 2, reviewer)
    sample = feedback_sample_decide(sample=sample, user=reviewer, decision="edited", version=2,
                                             edited_output="  改过的回答 ")
    assert (sample.decision, sample.edited_output, sample.version) == (ReviewDecision.EDITED, "改过的回答", 3)
    sample = feedback_sample_decide(sample=sample, user=reviewer, decision="rejected", version=3)
    assert (sample.decision, sample.edited_output) == (ReviewDecision.REJECTED, "")


def test_a_stale_version_is_a_conflict_and_changes_nothing(sample, reviewer, other_reviewer):
    feedback_sample_decide(sample=sample, user=other_reviewer, decision="rejected", version=1)
    with pytest.raises(ApplicationError) as exc:
        feedback_sample_decide(sample=sample, user=reviewer, decision="accepted", version=1)
    assert exc.value.code == "conflict" and "reviewer2" in exc.value.message
    assert FeedbackSample.objects.get(pk=sample.pk).decision == ReviewDecision.REJECTED


def test_edit_without_text_is_refused_and_unchanged_edit_is_accept(sample, reviewer):
    with pytest.raises(ApplicationError, match="需要填写"):
        feedback_sample_decide(sample=sample, user=reviewer, decision="edited", version=1, edited_output=" ")
    sample = feedback_sample_decide(sample=sample, user=reviewer, decision="edited", version=1,
                                             edited_output="原回答")
    assert sample.decision == ReviewDecision.ACCEPTED and sample.edited_output == ""


def test_unknown_decision_and_inactive_user_are_refused(sample):
    with pytest.raises(ApplicationError):
        feedback_sample_decide(sample=sample, user=UserFactory(), decision="maybe", version=1)
    with pytest.raises(ApplicationError) as exc:
        feedback_sample_decide(sample=sample, user=UserFactory(is_active=False), decision="accepted", version=1)
    assert exc.value.code == "forbidden"


def test_builder_records_skip_rejected_and_use_the_edited_output(db, reviewer):
    a = FeedbackSample.objects.create(feedback_id="a", instruction="问a", output="答a", rating=5)
    b = FeedbackSample.objects.create(feedback_id="b", instruction="问b", output="答b", rating=4)
    c = FeedbackSample.objects.create(feedback_id="c", instruction="问c", output="答c", rating=3)
    feedback_sample_decide(sample=a, user=reviewer, decision="edited", version=1, edited_output="改a")
    feedback_sample_decide(sample=b, user=reviewer, decision="rejected", version=1)
    records = list(feedback_records())
    assert [(r["id"], r["response"]) for r in records] == [("a", "改a"), ("c", "答c")]
    assert [r["id"] for r in feedback_records(min_rating=4)] == ["a"]
    assert [r["id"] for r in feedback_records(only_reviewed=True)] == ["a"]
