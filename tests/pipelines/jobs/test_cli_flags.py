"""The same flag means the same thing in every job command: `--wait` queues the job for the Celery
worker and follows it to its end, `--inline` runs it in the command's own process. run_generation used
`--wait` for "in this process"; it now follows the others and says so when `--wait` is given."""
import json
from io import StringIO

import pytest
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError

from pipelines.models import Job, JobKind, JobStatus
from tests.pipelines.generation.data import MARKED_SOURCES

JOB_COMMANDS = ["run_classification", "run_info_extraction", "run_dpo", "run_generation"]


def option_help(command: str, flag: str) -> str:
    parser = load_command_class(get_commands()[command], command).create_parser("manage.py", command)
    [action] = [a for a in parser._actions if flag in a.option_strings]
    return action.help


@pytest.mark.parametrize("flag", ["--wait", "--inline", "--timeout"])
def test_every_job_command_gives_the_flag_the_same_meaning(flag):
    meanings = {command: option_help(command, flag) for command in JOB_COMMANDS}
    assert len(set(meanings.values())) == 1, meanings


def source_file(tmp_path):
    source = tmp_path / "data_clean.json"
    source.write_text(json.dumps(MARKED_SOURCES, ensure_ascii=False), encoding="utf-8")
    return source


@pytest.mark.django_db(transaction=True)
def test_run_generation_wait_queues_for_the_worker_and_says_that_inline_is_the_old_meaning(
    marked_sources, llm_simulator, tmp_path  # noqa: F811
):
    err = StringIO()
    with pytest.raises(CommandError, match="worker"):
        call_command("run_generation", "--source", str(source_file(tmp_path)), "--output", str(tmp_path / "out"),
                     "--sample", "3", "--wait", "--timeout", "1", stdout=StringIO(), stderr=err)
    assert "--inline" in err.getvalue()  # the note for scripts written for the old meaning
    assert "没有在线的 worker 监听队列 generation" in err.getvalue()  # and why nothing moves
    job = Job.objects.get(kind=JobKind.GENERATION)
    assert job.status == JobStatus.QUEUED and job.enqueued_at is not None  # sent to the worker's queue
    assert llm_simulator.request_count() == 0  # nothing ran in the command's process


@pytest.mark.django_db(transaction=True)
def test_run_generation_inline_runs_in_this_process_and_writes_the_files(
    marked_sources, llm_simulator, tmp_path  # noqa: F811
):
    out = tmp_path / "out"
    stdout = StringIO()
    call_command("run_generation", "--source", str(source_file(tmp_path)), "--output", str(out), "--sample", "3",
                 "--inline", stdout=stdout, stderr=StringIO())
    job = Job.objects.get(kind=JobKind.GENERATION)
    assert job.status == JobStatus.DONE
    assert json.loads((out / "pipeline_report.json").read_text())["pipeline_stats"]["total_items"] == 3
    assert "通过" in stdout.getvalue()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_run_generation_wait_follows_the_job_on_a_real_worker_and_writes_the_files(
    marked_sources, llm_simulator, celery_worker_process, tmp_path  # noqa: F811
):
    out = tmp_path / "out"
    celery_worker_process()
    stdout = StringIO()
    call_command("run_generation", "--source", str(source_file(tmp_path)), "--output", str(out), "--sample", "4",
                 "--wait", "--timeout", "120", stdout=stdout, stderr=StringIO())
    job = Job.objects.get(kind=JobKind.GENERATION)
    assert job.status == JobStatus.DONE
    stats = json.loads((out / "pipeline_report.json").read_text())["pipeline_stats"]
    assert stats["total_items"] == 4 and stats["processed_items"] == 4
    lines = (out / "generated_examples.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == stats["valid_examples"]
    assert json.loads((out / "checkpoint.json").read_text())["processed_items"] == 4
