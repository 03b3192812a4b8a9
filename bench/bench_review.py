"""Review pages and the training-set export with 100,000 samples loaded.

Prints the median and p95 server time of the sample page and the class queue page (through the
Django test client, in process) and the time to export the corrected mode-3 training set next to a
bare json-lines write of the same rows. Targets: p95 < 100 ms; export within 2x of bare.

Runs in a throwaway database: a temporary SQLite file, or a `test_…` database on the configured
server when DATABASE_URL is set. BENCH_SAMPLES overrides the sample count. Asserts nothing.
"""
import json
import os
import random
import time
from pathlib import Path

from bench.common import request_times, throwaway_database

SAMPLES = int(os.environ.get("BENCH_SAMPLES", "100000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "60"))
BATCH = 5000


def _load(n_samples: int):
    """Bulk-create a dataset shaped like the team's: 23 classes, 3 modes, some reviews."""
    from django.contrib.auth import get_user_model

    from review.demo_catalog import DEMO_CATEGORIES
    from review.models import Assignment, Category, Cause, Dataset, Mode, Reasoning, Review, Sample

    rng = random.Random(7)
    dataset = Dataset.objects.create(name="bench")
    categories = Category.objects.bulk_create(
        [Category(dataset=dataset, name=c.name, definition=c.definition, position=i) for i, c in enumerate(DEMO_CATEGORIES)]
    )
    admin = get_user_model().objects.create_user("bench-admin", password="bench-pass-123", is_staff=True)
    reviewer = get_user_model().objects.create_user("bench-reviewer", password="bench-pass-123")
    Assignment.objects.bulk_create([Assignment(reviewer=reviewer, category=c) for c in categories[:5]])
    created = 0
    while created < n_samples:
        size = min(BATCH, n_samples - created)
        samples = Sample.objects.bulk_create(
            [
                Sample(dataset=dataset, external_id=f"s-{created + i:07d}", image=f"bench/{created + i:07d}.png",
                       label=categories[(created + i) % len(categories)])
                for i in range(size)
            ]
        )
        if samples[0].pk is None:  # backends that return no ids from bulk_create
            samples = list(Sample.objects.filter(dataset=dataset).order_by("-id")[:size])[::-1]
        reasonings, reviews = [], []
        for sample in samples:
            for mode in (Mode.FREE, Mode.WITH_DEFINITIONS, Mode.LIMITED):
                correct = rng.random() < (0.75, 0.88, 0.9)[mode - 1]
                predicted = sample.label if correct else categories[rng.randrange(len(categories))]
                length = rng.randrange(40, 95) if mode == Mode.LIMITED and rng.random() < 0.95 else rng.randrange(60, 200)
                output = f"推理：图片中是客服场景相关界面，{'细节' * (length // 4)}。\n类别：{predicted.name}"
                reasonings.append(Reasoning(
                    sample=sample, mode=mode, output=output, predicted_name=predicted.name,
                    predicted_category=predicted, is_correct=predicted.pk == sample.label_id, length=length,
                ))
            if rng.random() < 0.1:
                corrected = rng.random() < 0.5
                label_error = rng.random() < 0.05
                reviews.append(Review(  # as review_save stores them (a checked correction, a suggestion)
                    sample=sample, reviewer=reviewer, cause=rng.choice(Cause.values),
                    corrected_output="推理：人工修正。\n类别：" + sample.label.name if corrected else "",
                    corrected_category=sample.label if corrected else None, corrected_length=12 if corrected else 0,
                    label_error=label_error, suggestion_uncertain=label_error,
                ))
        Reasoning.objects.bulk_create(reasonings, batch_size=2000)
        Review.objects.bulk_create(reviews, batch_size=2000)
        created += size
    from review.counts import refresh_all

    refresh_all()  # bulk-created rows: compute their stored verdicts and counters
    return dataset, categories, admin, reviewer


def _bare_jsonl(dataset, path: Path) -> int:
    """The floor: the same rows (id, prompt, response, images) from the same query, one json.dumps
    per line, no selection or format logic."""
    from review.exports import _PromptCache, _trainset_rows

    prompt = "<image>" + _PromptCache(dataset).get(None)
    count = 0
    with open(path, "w", encoding="utf-8") as fh:
        for row in _trainset_rows(dataset).iterator(chunk_size=2000):
            record = {"id": row[0], "prompt": prompt, "response": row[6] or row[4] or "", "images": [row[1]]}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def main() -> None:
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from review.exports import write_trainset
    from review.models import Sample

    with throwaway_database("bench-review-") as tmp:
        started = time.perf_counter()
        dataset, categories, admin, reviewer = _load(SAMPLES)
        print(f"   loaded {SAMPLES:,} samples (3 modes each) into {connection.vendor} in {time.perf_counter() - started:.1f} s")

        client = Client()
        client.force_login(reviewer)
        rng = random.Random(11)
        ids = list(Sample.objects.filter(dataset=dataset).values_list("pk", flat=True)[:: max(1, SAMPLES // 500)])
        sample_urls = [reverse("review:sample", args=[rng.choice(ids)]) for _ in range(REQUESTS)]
        queue_urls = [
            reverse("review:queue", args=[rng.choice(categories).pk]) + (f"?page={rng.randrange(1, 20)}" if i % 2 else "")
            for i in range(REQUESTS)
        ]
        median, p95 = request_times(client, sample_urls)
        print(f"   sample page      median {median:7.1f} ms   p95 {p95:7.1f} ms   (target p95 < 100 ms)")
        median, p95 = request_times(client, queue_urls)
        print(f"   class queue page median {median:7.1f} ms   p95 {p95:7.1f} ms   (target p95 < 100 ms)")
        overview_url = reverse("analysis:overview", args=[dataset.pk])
        median, p95 = request_times(client, [overview_url] * 8)
        print(f"   analysis overview median {median:6.1f} ms   p95 {p95:7.1f} ms   (dataset-wide aggregates)")

        started = time.perf_counter()
        bare_rows = _bare_jsonl(dataset, tmp / "bare.jsonl")
        bare = time.perf_counter() - started
        print(f"   bare json-lines write     {bare:6.2f} s   {bare_rows:,} rows")
        for fmt, suffix in (("jsonl", ".jsonl"), ("alpaca", ".json"), ("sharegpt", ".json")):
            started = time.perf_counter()
            report = write_trainset(dataset=dataset, fmt=fmt, path=tmp / f"train-{fmt}{suffix}")
            took = time.perf_counter() - started
            print(f"   export {fmt:<9}          {took:6.2f} s   {report.rows:,} rows written "
                  f"({report.pending:,} pending, {report.label_error_count:,} label errors)   {took / bare:.2f}x bare")
        # Constant memory: peak Python allocations while streaming the whole set (timed runs above
        # are without tracing, which slows allocation-heavy code).
        import tracemalloc

        tracemalloc.start()
        write_trainset(dataset=dataset, fmt="sharegpt", path=tmp / "train-traced.json")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"   export peak Python memory {peak / 1e6:6.1f} MB for {SAMPLES:,} samples (streams; does not grow with rows)")
