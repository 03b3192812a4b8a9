"""Call-log extraction: which lines become records and why the others are dropped, problem lines
reported with file and line, the import job, and the extract_from_logs command's flags."""
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from pipelines.datasets import formats
from pipelines.jobs.services import job_create, run_job_inline
from pipelines.datasets.logs import LogLineRejected, LogReader, extract_call
from pipelines.models import JobKind, JobStatus, LogRecord
from tests.pipelines.datasets.source_files import log_line, write_log_folder


@pytest.mark.parametrize(("call", "reason"), [
    ({"success": False, "prompt": "p", "response": {"answer": "a"}}, "not_successful"),
    ({"prompt": "p", "response": {"answer": "a"}}, "not_successful"),
    ({"success": True, "prompt": "p"}, "no_response"),
    ({"success": True, "prompt": "p", "response": {"text": "a"}}, "no_answer"),
    ({"success": True, "prompt": "p", "response": "not json"}, "no_answer"),
    ({"success": True, "prompt": "  ", "response": {"answer": "a"}}, "no_prompt"),
    (["a list"], "not_object"),
])
def test_unusable_calls_are_rejected_with_their_reason(call, reason):
    with pytest.raises(LogLineRejected) as exc:
        extract_call(call)
    assert exc.value.reason == reason


def test_prompt_falls_back_to_batch_content_and_response_may_be_a_json_string():
    call = json.loads(log_line(None, "回答", batch_content="批次内容", response_as="json_string"))
    assert extract_call(call) == {"prompt": "批次内容", "response": "回答", "model_name": "qwen-72b-chat"}
    structured = extract_call({"success": "true", "prompt": "p", "response": {"answer": {"大纲": ["一", "二"]}}})
    assert structured["response"] == '{"大纲": ["一", "二"]}'


def test_reader_counts_every_drop_reason_and_lists_bad_lines(tmp_path):
    reader = LogReader(write_log_folder(tmp_path / "logs"))
    records = list(reader)
    assert [r["id"] for r in records] == ["calls_2025-03-01.jsonl:1", "calls_2025-03-01.jsonl:2",
                                          "calls_2025-03-01.jsonl:3", "calls_2025-03-01.jsonl:10", "sub/old_gbk.jsonl:2"]
    assert records[1]["prompt"] == "第1批：甲乙丙"
    report = reader.report
    assert report["files"] == 2 and report["lines"] == 12 and report["kept"] == 5
    assert report["dropped"] == {"malformed_json": 1, "not_successful": 1, "no_response": 1, "no_answer": 1,
                                 "no_prompt": 1, "not_object": 1, "encoding": 1}
    listed = {(p["reason"], p["file"], p["line"]) for p in report["problems"]}
    assert listed == {("malformed_json", "calls_2025-03-01.jsonl", 4), ("not_object", "calls_2025-03-01.jsonl", 11),
                      ("encoding", "sub/old_gbk.jsonl", 1)}


def test_a_line_is_read_as_json_loads_reads_it(tmp_path):
    """The reader parses a line without json.loads' own checks when it can: what it keeps, and the
    error it reports for a line it cannot read, must still be json.loads'."""
    good = log_line("问题", "回答")
    lines = [good, f"  {good}\t ", f"{good}\u3000", f"{good} {good}", f"{good} x", "[1, 2", '{"a": NaN}',
             f"\ufeff{good}", "\u3000" + good, "", "   ", good[:-1], '"只是文字"', "\x0b" + good]
    (tmp_path / "calls.jsonl").write_text("\n".join(["{}"] + lines) + "\n", encoding="utf-8")
    reader = LogReader(tmp_path)
    kept = {int(r["id"].split(":")[1]) for r in reader}
    problems = {p["line"]: p["detail"] for p in reader.report["problems"] if p["reason"] == "malformed_json"}
    for line_no, line in enumerate(lines, start=2):
        if not line.strip(" \t\n\r\x0b\x0c"):
            continue  # blank lines are skipped, not read
        try:
            value = json.loads(line + "\n")  # as read: with its line break
        except ValueError as exc:
            assert problems.pop(line_no) == str(exc), line
        else:
            assert (line_no in kept) == (value == json.loads(good)), line
    assert problems == {} and len(kept) == 2


def test_missing_log_dir_is_a_clear_error(tmp_path):
    from core.errors import ApplicationError

    with pytest.raises(ApplicationError, match="日志目录不存在"):
        LogReader(tmp_path / "nope")


# --------------------------------------------------------------------------- the import job

@pytest.mark.django_db
def test_import_job_creates_log_records_once_per_line(tmp_path):
    folder = write_log_folder(tmp_path / "logs")
    job = run_job_inline(job_create(kind=JobKind.LOG_EXTRACTION, params={"log_dir": str(folder)}))
    assert job.status == JobStatus.DONE and job.items_total == 2
    assert LogRecord.objects.filter(job=job).count() == 5
    assert job.report["kept"] == 5 and job.report["dropped"]["encoding"] == 1
    assert any(p["reason"] == "malformed_json" and p["line"] == 4 for p in job.report["problems"])
    row = LogRecord.objects.get(line_no=2, source_file__endswith="calls_2025-03-01.jsonl")
    assert row.prompt == "第1批：甲乙丙" and row.model_name == "qwen-72b-chat" and len(row.content_hash) == 64
    # Importing the same folder again rewrites the same rows instead of duplicating them.
    again = run_job_inline(job_create(kind=JobKind.LOG_EXTRACTION, params={"log_dir": str(folder)}))
    assert LogRecord.objects.count() == 5 and LogRecord.objects.filter(job=again).count() == 5


@pytest.mark.django_db
def test_import_job_refuses_a_folder_without_logs(tmp_path):
    from core.errors import ApplicationError

    (tmp_path / "empty").mkdir()
    with pytest.raises(ApplicationError, match="没有 .jsonl"):
        job_create(kind=JobKind.LOG_EXTRACTION, params={"log_dir": str(tmp_path / "empty")})


# --------------------------------------------------------------------------- extract_from_logs

def run_command(*args):
    from io import StringIO

    out = StringIO()
    call_command("extract_from_logs", *args, stdout=out)
    return out.getvalue()


def read_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.django_db
def test_command_defaults_match_the_team_script(tmp_path):
    folder = write_log_folder(tmp_path / "logs")
    out = run_command("--log-dir", str(folder), "--output", str(tmp_path / "out" / "alpaca.json"))
    rows = read_json(tmp_path / "out" / "alpaca.json")
    # dedup on prompt is on by default: the second "问题一" is dropped
    assert len(rows) == 4 and sorted(r["instruction"] for r in rows) == sorted(
        ["问题一：介绍长城", "第1批：甲乙丙", "问题三：介绍故宫", "问题四：介绍黄山"])
    assert set(rows[0]) == {"instruction", "input", "output"}
    report = read_json(tmp_path / "out" / "alpaca_report.json")
    assert report["options"]["shuffle"] is True and report["options"]["seed"] == 42
    assert report["options"]["dedup"] is True and report["options"]["dedup_field"] == "prompt"
    assert "calls_2025-03-01.jsonl:4 malformed_json" in out and "sub/old_gbk.jsonl:1 encoding" in out
    assert "dataset_info.json" in {p.name for p in (tmp_path / "out").iterdir()}


@pytest.mark.django_db
def test_command_flags(tmp_path):
    folder = write_log_folder(tmp_path / "logs")
    output = tmp_path / "out" / "data.jsonl"
    run_command("--log-dir", str(folder), "--format", "sharegpt", "--output", str(output), "--no-deduplicate",
                "--min-length", "100", "--max-length", "10000", "--limit", "3", "--no-shuffle", "--seed", "7",
                "--split-ratio", "0.67,0.33")
    train = [json.loads(line) for line in (tmp_path / "out" / "data_train.jsonl").read_text(encoding="utf-8").splitlines()]
    test = [json.loads(line) for line in (tmp_path / "out" / "data_test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert (len(train), len(test)) == (2, 1)
    assert all(formats.validate_row("sharegpt", row) == [] for row in train + test)
    report = read_json(tmp_path / "out" / "data_report.json")
    steps = {s["step"]: s for s in report["steps"]}
    assert steps["dedup"]["dropped"] == 0
    # answers shorter than 100 characters dropped: "长城…"×8 = 120 chars stays, "批量回答" 124 stays
    assert steps["length"]["in"] == 5 and steps["limit"]["kept"] == 3
    assert report["options"]["seed"] == 7 and report["options"]["shuffle"] is False


@pytest.mark.django_db
def test_command_same_seed_same_output(tmp_path):
    folder = write_log_folder(tmp_path / "logs")
    for name in ("a", "b"):
        run_command("--log-dir", str(folder), "--output", str(tmp_path / name / "d.json"), "--seed", "3")
    assert (tmp_path / "a" / "d.json").read_bytes() == (tmp_path / "b" / "d.json").read_bytes()


@pytest.mark.django_db
def test_command_can_also_import_records(tmp_path):
    folder = write_log_folder(tmp_path / "logs")
    out = run_command("--log-dir", str(folder), "--output", str(tmp_path / "o.json"), "--import-records")
    assert LogRecord.objects.count() == 5 and "已导入 LogRecord" in out


def test_command_errors_are_clear(tmp_path):
    with pytest.raises(CommandError, match="日志目录不存在"):
        run_command("--log-dir", str(tmp_path / "missing"))
    with pytest.raises(CommandError, match="拆分比例"):
        run_command("--log-dir", str(tmp_path), "--split-ratio", "0.8")
    with pytest.raises(CommandError, match="没有 .jsonl"):
        run_command("--log-dir", str(tmp_path))
    with pytest.raises(CommandError, match="偏好格式"):
        run_command("--log-dir", str(tmp_path), "--format", "trl_preference")
