"""A generation run's files grow while it runs: the team checks progress mid-run with
`wc -l generated_examples.jsonl` and checkpoint.json, as with their own script. At the end the files
are rewritten whole from the rows (nothing duplicated, nothing half-written)."""
import json

import pytest

from pipelines.jobs.services import run_job_inline
from pipelines.models import GeneratedExample, ItemStatus, JobItem
from tests.pipelines.generation.data import start_run

pytestmark = pytest.mark.django_db(transaction=True)


def lines(path):
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_the_files_and_the_checkpoint_grow_during_the_run(marked_sources, llm_simulator, tmp_path, settings):  # noqa: F811
    settings.JOB_HEARTBEAT_SECONDS = 0.1
    llm_simulator.set_faults(latency_ms=100)
    out = tmp_path / "output"
    job = start_run(marked_sources, output_dir=str(out), concurrency=1)
    seen = []

    def look(progress):
        # What `wc -l` and `cat checkpoint.json` show at this moment of the run.
        if 0 < progress.finished < progress.total:
            checkpoint = json.loads((out / "checkpoint.json").read_text()) if (out / "checkpoint.json").exists() else {}
            on_disk = lines(out / "generated_examples.jsonl") + lines(out / "failed_examples.jsonl")
            stored = GeneratedExample.objects.filter(job=job).count()
            finished = JobItem.objects.filter(job=job, status__in=[ItemStatus.DONE, ItemStatus.FAILED]).count()
            seen.append((len(on_disk), stored, checkpoint.get("processed_items"), finished))

    job = run_job_inline(job, on_progress=look)
    mid_run = [s for s in seen if s[0] > 0]
    assert mid_run, f"no example reached the files before the end of the run: {seen}"
    assert all(on_disk == stored and processed == finished for on_disk, stored, processed, finished in mid_run), seen
    assert len({s[0] for s in mid_run}) >= 2, f"the files did not grow step by step: {seen}"

    # The end: one line per example, passed and failed apart, checkpoint complete.
    passed = GeneratedExample.objects.filter(job=job, passed=True).count()
    failed = GeneratedExample.objects.filter(job=job, passed=False).count()
    assert len(lines(out / "generated_examples.jsonl")) == passed
    assert len(lines(out / "failed_examples.jsonl")) == failed
    ids = [json.loads(line)["id"] for line in lines(out / "generated_examples.jsonl") + lines(out / "failed_examples.jsonl")]
    assert len(ids) == len(set(ids))
    assert json.loads((out / "checkpoint.json").read_text())["processed_items"] == job.items_total
