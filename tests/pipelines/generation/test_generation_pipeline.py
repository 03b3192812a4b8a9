"""The generation job end to end against the LLM simulator over HTTP: split and counts, malformed
verdicts, missing tags, the team's files, resume, re-run, export round trip and the CLI commands."""
import json
from io import StringIO

import pytest
from django.core.management import call_command

from pipelines.datasets import formats
from pipelines.generation.analysis import analyze, load_run_dir
from pipelines.generation.selectors import PROVENANCE_EDITED, PROVENANCE_JUDGE, rerun_comparison, run_analysis
from pipelines.generation.services import generated_example_decide, generation_export, generation_rerun_failed
from pipelines.jobs.services import job_resume, run_job_inline
from pipelines.generation.judge import REASON_UNPARSEABLE
from pipelines.models import GeneratedExample, ItemStatus, JobStatus, ReviewDecision
from core.errors import ApplicationError
from tests.pipelines.generation.data import start_run

SEED_FAILED_KEYS = ["id", "image", "wiki_title", "question", "response", "is_multiple_choice", "validation_result",
                    "failure_reason", "overall_score", "timestamp"]


def _by_source(job):
    return {e.source_item.external_id: e for e in GeneratedExample.objects.filter(job=job).select_related("source_item")}


@pytest.mark.django_db(transaction=True)
def test_pass_fail_split_and_counts_match_the_report_and_files(finished_run, tmp_path):
    job = finished_run
    assert job.status == JobStatus.DONE
    rows = _by_source(job)
    assert sorted(k for k, e in rows.items() if e.passed) == ["pass-1", "pass-2", "pass-3"]
    assert len(rows) == 8 and job.items.filter(status=ItemStatus.DONE).count() == 8

    stats = job.report["pipeline_stats"]
    assert (stats["valid_examples"], stats["failed_validation"], stats["generation_errors"]) == (3, 5, 0)
    assert stats["multiple_choice_examples"] == sum(e.is_multiple_choice for e in rows.values())

    from pipelines.generation.run_files import write_run_files

    write_run_files(job, tmp_path / "out")
    passed, failed, report = load_run_dir(tmp_path / "out")
    assert len(passed) == stats["valid_examples"] and len(failed) == stats["failed_validation"]
    assert report["pipeline_stats"] == stats
    assert list(failed[0]) == SEED_FAILED_KEYS  # the seed's record format, in its order
    assert "failure_reason" not in passed[0]
    # The analysis from the files equals the analysis from the database.
    from_files = analyze(passed, failed, generation_errors=0)
    from_db = run_analysis(job)
    assert from_files["totals"] == from_db["totals"]
    assert from_files["failure_reasons"] == from_db["failure_reasons"]


@pytest.mark.django_db(transaction=True)
def test_malformed_judge_output_is_its_own_failure_and_keeps_the_raw_answer(finished_run):
    example = _by_source(finished_run)["malformed-1"]
    assert example.passed is False and example.structure_ok is True
    assert example.failure_reasons == [REASON_UNPARSEABLE]
    assert example.overall_score is None
    assert example.judge_raw.startswith('{"overall_score": 6.5')  # kept verbatim
    assert example.validation_result["stage"] == "judge" and example.validation_result["error"]


@pytest.mark.django_db(transaction=True)
def test_missing_tags_fail_before_the_judge_is_asked(finished_run):
    rows = _by_source(finished_run)
    assert rows["no-think-1"].failure_reasons == ["Missing <think> tag"]
    assert rows["no-answer-1"].failure_reasons == ["Missing <answer> tag"]
    for key in ("no-think-1", "no-answer-1"):
        assert rows[key].structure_ok is False and rows[key].judge_raw == ""
    judged = rows["fail-1"]
    assert judged.failure_reasons == ["Insufficient depth in reasoning", "Missing visual details"]
    assert judged.overall_score < 7 and judged.validation_result["scores"]["reasoning_depth"] >= 0


@pytest.mark.django_db(transaction=True)
def test_resume_redoes_only_unfinished_items(finished_run, llm_simulator):
    job = finished_run
    rows = _by_source(job)
    before_ids = {k: e.example_id for k, e in rows.items()}
    # An interruption: two items never stored, one stored but not yet marked done.
    GeneratedExample.objects.filter(pk__in=[rows["pass-1"].pk, rows["pass-2"].pk]).delete()
    job.items.filter(key__in=["pass-1", "pass-2", "pass-3"]).update(status=ItemStatus.PENDING)
    job.status = JobStatus.RUNNING
    job.save(update_fields=["status"])
    llm_simulator.reset_counts()

    job = run_job_inline(job_resume(job=job))

    # question + response + judge for each of the two lost items; nothing for the stored one.
    assert llm_simulator.request_count() == 6
    rows = _by_source(job)
    assert len(rows) == 8 and job.items.filter(status=ItemStatus.DONE).count() == 8
    assert rows["pass-3"].example_id == before_ids["pass-3"]
    assert job.report["pipeline_stats"]["valid_examples"] == 3


@pytest.mark.django_db(transaction=True)
def test_store_is_idempotent_for_a_redelivered_item(finished_run):
    from pipelines.generation.jobkind import GenerationHandler

    handler = GenerationHandler()
    example = _by_source(finished_run)["fail-1"]
    payload = {"source_id": example.source_item_id, "is_multiple_choice": example.is_multiple_choice}
    output = {"question": "Q", "response": example.response, "judge_raw": '{"overall_score": 9, "issues": []}',
              "structure_problems": []}
    handler.store(finished_run, "fail-1", payload, output)
    assert GeneratedExample.objects.filter(job=finished_run, source_item_id=example.source_item_id).count() == 1
    again = GeneratedExample.objects.get(pk=example.pk)
    assert again.passed is True and again.example_id == example.example_id


@pytest.mark.django_db(transaction=True)
def test_rerun_failed_items_with_a_changed_setting_compares_pass_rates(finished_run, admin_user, reviewer):
    job = finished_run
    rejected = _by_source(job)["fail-2"]
    generated_example_decide(example=rejected, user=reviewer, decision="rejected", version=rejected.version)
    with pytest.raises(ApplicationError):
        generation_rerun_failed(job=job, user=admin_user, changes={"temperature": "0.7"})  # unchanged
    child = generation_rerun_failed(job=job, user=admin_user, changes={"pass_threshold": "1"})
    assert child.parent_id == job.pk
    # Decided examples are not re-run: 5 failed − 1 rejected.
    assert sorted(child.params["source_ids"]) == ["fail-1", "malformed-1", "no-answer-1", "no-think-1"]
    assert child.params["rerun_changes"] == {"pass_threshold": {"before": 7, "after": 1.0}}
    run_job_inline(child)
    row = rerun_comparison(job)[0]
    # With threshold 1 only the judged one passes; malformed and missing tags still fail.
    assert (row["done"], row["passed"]) == (4, 1)
    assert row["items_pass_rate_after"] == 0.25
    assert row["run_pass_rate_before"] == round(3 / 8, 4) and row["run_pass_rate_after"] == 0.5


@pytest.mark.django_db(transaction=True)
def test_export_round_trip_with_provenance(finished_run, admin_user, reviewer, settings):
    job = finished_run
    rows = _by_source(job)
    target = rows["no-think-1"]
    fixed = "<look>画面中是星空和村庄</look><think>旋转的笔触说明是梵高的风格。</think><answer>星月夜</answer>"
    generated_example_decide(example=target, user=reviewer, decision="edited", version=target.version,
                             edited_response=fixed)
    rejected = rows["fail-1"]
    generated_example_decide(example=rejected, user=reviewer, decision="rejected", version=rejected.version)

    export = generation_export(job=job, user=admin_user)
    assert export.row_count == 4 and export.report["provenance"] == {PROVENANCE_JUDGE: 3, PROVENANCE_EDITED: 1}

    folder = settings.EXPORT_ROOT / export.path
    sharegpt = formats.read_records(folder / export.report["files"]["sharegpt_multimodal"], "sharegpt_multimodal")
    assert len(sharegpt) == 4
    by_response = {r["response"]: r for r in sharegpt}
    assert fixed in by_response  # the human's edited response, not the model's
    for record in sharegpt:
        assert record["prompt"].startswith("<image>") and len(record["images"]) == 1
    expected = {e.question for e in (rows["pass-1"], rows["pass-2"], rows["pass-3"], target)}
    assert {r["prompt"].removeprefix("<image>") for r in sharegpt} == expected

    openai_rows = formats.read_records(folder / export.report["files"]["openai"], "openai")
    assert {r["prompt"] for r in openai_rows} == expected

    info = json.loads((folder / "dataset_info.json").read_text())
    assert info == export.dataset_info
    entry = info[f"generation_run{job.pk}_sharegpt_multimodal"]
    assert entry == {"file_name": "generation_sharegpt_multimodal.json", "formatting": "sharegpt",
                     "columns": {"messages": "conversations", "images": "images"}}
    assert info[f"generation_run{job.pk}_openai"]["columns"] == {"messages": "messages"}

    provenance = [json.loads(line) for line in
                  (folder / "provenance.jsonl").read_text().splitlines()]
    marks = {p["id"]: p for p in provenance}
    assert marks[target.example_id]["provenance"] == PROVENANCE_EDITED
    assert marks[target.example_id]["decided_by"] == reviewer.username
    assert rejected.example_id not in marks


@pytest.mark.django_db(transaction=True)
def test_decide_rules(finished_run, reviewer, other_reviewer):
    rows = _by_source(finished_run)
    example = rows["fail-1"]
    with pytest.raises(ApplicationError, match="结构不完整"):
        generated_example_decide(example=example, user=reviewer, decision="edited", version=example.version,
                                 edited_response="<look>x</look><answer>y</answer>")
    broken = rows["no-answer-1"]
    with pytest.raises(ApplicationError, match="不能原样接受"):
        generated_example_decide(example=broken, user=reviewer, decision="accepted", version=broken.version)
    generated_example_decide(example=example, user=reviewer, decision="accepted", version=1)
    with pytest.raises(ApplicationError) as conflict:
        generated_example_decide(example=example, user=other_reviewer, decision="rejected", version=1)
    assert conflict.value.code == "conflict"
    with pytest.raises(ApplicationError):
        passed = rows["pass-1"]
        generated_example_decide(example=passed, user=reviewer, decision="rejected", version=passed.version)
    assert GeneratedExample.objects.get(pk=example.pk).decision == ReviewDecision.ACCEPTED


@pytest.mark.django_db(transaction=True)
def test_run_generation_command_writes_files_and_resumes(marked_sources, llm_simulator, tmp_path, media_root):
    source = tmp_path / "data_clean.json"
    from tests.pipelines.generation.data import MARKED_SOURCES

    source.write_text(json.dumps(MARKED_SOURCES, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "output"
    stdout = StringIO()
    call_command("run_generation", "--source", str(source), "--output", str(out), "--sample", "6", "--inline",
                 stdout=stdout, stderr=StringIO())
    report = json.loads((out / "pipeline_report.json").read_text())
    stats = report["pipeline_stats"]
    assert stats["total_items"] == 6
    assert stats["valid_examples"] + stats["failed_validation"] + stats["generation_errors"] == 6
    lines = (out / "generated_examples.jsonl").read_text().splitlines()
    assert len(lines) == stats["valid_examples"]
    checkpoint = json.loads((out / "checkpoint.json").read_text())
    assert checkpoint["processed_items"] == 6

    # Interrupt: two items lose their outcome; running again with the same --output resumes.
    from pipelines.models import Job

    job = Job.objects.get(pk=checkpoint["job_id"])
    lost = list(job.items.values_list("key", flat=True)[:2])
    GeneratedExample.objects.filter(job=job, source_item__external_id__in=lost).delete()
    job.items.filter(key__in=lost).update(status=ItemStatus.PENDING)
    llm_simulator.reset_counts()
    stdout = StringIO()
    call_command("run_generation", "--source", str(source), "--output", str(out), "--inline",
                 stdout=stdout, stderr=StringIO())
    assert "继续任务" in stdout.getvalue()
    assert 4 <= llm_simulator.request_count() <= 6  # 2 items × (2 or 3 calls), nothing else
    assert json.loads((out / "pipeline_report.json").read_text())["pipeline_stats"] == stats
    assert len((out / "generated_examples.jsonl").read_text().splitlines()) == len(lines)

    text = StringIO()
    call_command("analyze_failures", str(out), stdout=text)
    assert f"Total examples generated: {stats['valid_examples'] + stats['failed_validation']}" in text.getvalue()
    assert "VALIDATION FAILURE ANALYSIS" in text.getvalue()


@pytest.mark.django_db
def test_import_sources_command_reports_bad_lines(tmp_path):
    path = tmp_path / "sources.jsonl"
    path.write_text('{"id": "a", "wiki_title": "A"}\n{broken\n{"id": "b", "image": "b.jpg"}\n', encoding="utf-8")
    out, err = StringIO(), StringIO()
    call_command("import_sources", str(path), "--collection", "cli", stdout=out, stderr=err)
    assert f"{path}:2:" in err.getvalue()
    assert "新增 2" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_refused_model_calls_are_generation_errors_not_examples(marked_sources, llm_simulator, admin_user):
    # The content filter refuses some inputs for good (HTTP 400 data_inspection_failed).
    llm_simulator.set_faults(rate_content_filter=0.3)
    job = run_job_inline(start_run(marked_sources, user=admin_user))
    failed_items = job.items.filter(status=ItemStatus.FAILED)
    assert failed_items.exists()
    assert set(failed_items.values_list("error_kind", flat=True)) == {"content_filter"}
    stats = job.report["pipeline_stats"]
    # A refused judge call keeps its generated answer (judged again later): not a validation result.
    examples = GeneratedExample.objects.filter(job=job).exclude(validation_result__stage="judge_error").count()
    assert stats["generation_errors"] == failed_items.count()
    assert stats["valid_examples"] + stats["failed_validation"] == examples == 8 - failed_items.count()
    assert job.report["generation_error_kinds"] == {"content_filter": failed_items.count()}
    assert run_analysis(job)["totals"]["generation_errors"] == failed_items.count()


@pytest.mark.django_db(transaction=True)
def test_items_whose_image_is_missing_or_broken_fail_without_model_calls(marked_sources, llm_simulator, media_root):
    from pipelines.models import SourceItem

    SourceItem.objects.filter(external_id="pass-1").update(image="img/not-there.png")
    (media_root / "img" / "pass-2.png").write_bytes(b"not a png")
    SourceItem.objects.filter(external_id="pass-3").update(image="../../etc/passwd")
    job = run_job_inline(start_run(marked_sources))
    kinds = dict(job.items.filter(status=ItemStatus.FAILED).values_list("key", "error_kind"))
    assert kinds == {"pass-1": "image_missing", "pass-2": "image_invalid", "pass-3": "image_missing"}
    assert job.report["pipeline_stats"]["generation_errors"] == 3
    assert not GeneratedExample.objects.filter(job=job, source_item__external_id__startswith="pass-").exists()
