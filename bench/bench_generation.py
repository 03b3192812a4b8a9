"""Generation + judge: source import, job throughput against the simulator, analysis at scale.

Prints: import time for BENCH_GEN_SOURCES source records; items per second of a generation job over
BENCH_GEN_ITEMS items (3 model calls each) against the in-process simulator with 20 ms latency;
server time of the failure-analysis and review pages and of `analyze` over BENCH_GEN_EXAMPLES
synthetic examples. Targets: analysis page p95 < 1 s at 20,000 examples; review page p95 < 100 ms.
Runs in a throwaway database. Asserts nothing.
"""
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

SOURCES = int(os.environ.get("BENCH_GEN_SOURCES", "20000"))
ITEMS = int(os.environ.get("BENCH_GEN_ITEMS", "200"))
EXAMPLES = int(os.environ.get("BENCH_GEN_EXAMPLES", "20000"))
REQUESTS = 10


def _times(client, urls):
    took = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url)
        took.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    took.sort()
    return statistics.median(took), took[max(0, int(len(took) * 0.95) - 1)]


def _synthetic_examples(job, items):
    from pipelines.models import GeneratedExample

    rng = random.Random(3)
    reasons = ["Insufficient depth in reasoning", "Missing visual details", "Repetitive language in cycles",
               "Missing <think> tag"]
    rows = []
    for i, item in enumerate(items):
        passed = rng.random() < 0.8
        score = round(rng.uniform(7, 10) if passed else rng.uniform(3, 7), 1)
        failure = [] if passed else rng.sample(reasons, rng.randint(1, 2))
        rows.append(GeneratedExample(
            job=job, source_item=item, example_id=f"gpt_bench_{i}", question=f"问题 {i}：图中是什么？",
            is_multiple_choice=rng.random() < 0.3, structure_ok=True, passed=passed, overall_score=score,
            response="<look>一座木塔</look><think>五层飞檐。</think><answer>应县木塔</answer>",
            validation_result={"overall_score": score, "pass": passed, "issues": failure}, failure_reasons=failure,
        ))
    GeneratedExample.objects.bulk_create(rows, batch_size=2000)


def main() -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment, teardown_test_environment

    from pipelines.generation.analysis import analyze
    from pipelines.generation.selectors import example_to_record, run_examples
    from pipelines.generation.services import source_items_import
    from pipelines.jobs.services import job_create, run_job_inline
    from pipelines.models import Job, JobKind, SourceItem
    from pipelines.llm.simulator.server import serve_in_thread

    settings.DEBUG = False
    tmp = Path(tempfile.mkdtemp(prefix="bench-generation-"))
    if connection.vendor == "sqlite":
        connection.settings_dict.setdefault("TEST", {})["NAME"] = str(tmp / "bench.sqlite3")
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    simulator = serve_in_thread(latency_ms=20)
    try:
        text = "\n".join(
            json.dumps({"id": f"s{i:06d}", "wiki_title": f"条目 {i}",
                        "facts": [f"事实 {i}"], "category": ["建筑", "艺术", "动物"][i % 3]}, ensure_ascii=False)
            for i in range(SOURCES)
        )
        started = time.perf_counter()
        report = source_items_import(text=text, collection="bench")
        print(f"   import {report.created:,} source records   {time.perf_counter() - started:6.2f} s")

        settings.OPENAI_BASE_URL = simulator.base_url
        settings.LLM_REQUESTS_PER_MINUTE = 0
        job = job_create(kind=JobKind.GENERATION, params={"collection": "bench", "sample": ITEMS, "concurrency": 16})
        started = time.perf_counter()
        job = run_job_inline(job)
        took = time.perf_counter() - started
        print(f"   generation job {ITEMS} items (3 calls each, 20 ms latency, concurrency 16)   "
              f"{took:6.2f} s   {ITEMS / took:6.1f} items/s   pass rate {job.report['pipeline_stats']['pass_rate']}")

        big = Job.objects.create(kind=JobKind.GENERATION, params={"collection": "bench"}, status="done")
        _synthetic_examples(big, list(SourceItem.objects.filter(collection="bench").order_by("id")[:EXAMPLES]))
        records = [example_to_record(e) for e in run_examples(big)]
        passed = [r for r in records if r["validation_result"]["pass"]]
        failed = [r for r in records if not r["validation_result"]["pass"]]
        started = time.perf_counter()
        analyze(passed, failed)
        print(f"   analyze {len(records):,} records in memory      {(time.perf_counter() - started) * 1000:7.1f} ms")

        admin = get_user_model().objects.create_user("bench-admin", password="bench-pass-123", is_staff=True)
        client = Client()
        client.force_login(admin)
        median, p95 = _times(client, [f"/generation/runs/{big.pk}/"] * REQUESTS)
        print(f"   analysis page ({len(records):,} examples) median {median:7.1f} ms   p95 {p95:7.1f} ms   (target p95 < 1 s)")
        urls = [f"/generation/runs/{big.pk}/failed/?page={random.Random(i).randrange(1, 200)}" for i in range(REQUESTS)]
        median, p95 = _times(client, urls)
        print(f"   review page                 median {median:7.1f} ms   p95 {p95:7.1f} ms   (target p95 < 100 ms)")
    finally:
        simulator.stop()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
        for path in tmp.iterdir():
            path.unlink()
        tmp.rmdir()
