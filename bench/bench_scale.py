"""Scale: the review pages with 1,000,000 samples, one class holding 100,000 of them.

Prints, each beside its target (issue "scale to a million samples"):
- the sample page and the class queue page, p95 under every queue filter and sort, in the big
  class (target < 50 ms);
- the analysis overview and the home page (target < 200 ms);
- the corrected-set export next to a bare json-lines write of the same rows (target ≤ 1.5×) and its
  peak Python memory (flat: it streams);
- how long recomputing every stored verdict and counter takes (`manage.py refresh_counts`).

Runs in a throwaway database: a temporary SQLite file, or a `test_…` database on the configured
server when DATABASE_URL is set. BENCH_SCALE_SAMPLES (default 1,000,000) and BENCH_SCALE_BIG
(default 100,000) change the sizes; BENCH_SCALE_REQUESTS (default 30) the requests per figure.
Asserts nothing.
"""
import json
import os
import random
import time
from pathlib import Path

from bench.common import request_times, throwaway_database

SAMPLES = int(os.environ.get("BENCH_SCALE_SAMPLES", "1000000"))
BIG = int(os.environ.get("BENCH_SCALE_BIG", "100000"))
REQUESTS = int(os.environ.get("BENCH_SCALE_REQUESTS", "30"))
BATCH = 5000
PAGE_TARGET_MS, OVERVIEW_TARGET_MS, EXPORT_TARGET = 50, 200, 1.5


def _generate(n_samples: int, n_big: int):
    """A dataset shaped like the team's, bulk-created: 23 classes (the first holds `n_big` samples),
    three modes per sample, ~10 % reviewed (corrections as review_save stores them, label errors
    with a suggestion). The stored verdicts and counters are then computed by the product's own
    refresh, which is timed."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from review.demo_catalog import DEMO_CATEGORIES
    from review.models import Assignment, Category, Cause, Dataset, Mode, Reasoning, Review, Sample

    rng = random.Random(7)
    dataset = Dataset.objects.create(name="scale")
    categories = Category.objects.bulk_create(
        [Category(dataset=dataset, name=c.name, definition=c.definition, position=i) for i, c in enumerate(DEMO_CATEGORIES)]
    )
    reviewer = get_user_model().objects.create_user("scale-reviewer", password="scale-pass-123")
    Assignment.objects.bulk_create([Assignment(reviewer=reviewer, category=c) for c in categories])
    others = categories[1:]
    now = timezone.now()
    created = 0
    while created < n_samples:
        size = min(BATCH, n_samples - created)
        labels = [categories[0] if created + i < n_big else others[(created + i) % len(others)] for i in range(size)]
        samples = Sample.objects.bulk_create([
            Sample(dataset=dataset, external_id=f"s-{created + i:07d}", image=f"scale/{created + i:07d}.png",
                   label=labels[i]) for i in range(size)
        ])
        if samples[0].pk is None:  # backends that return no ids from bulk_create
            samples = list(Sample.objects.filter(dataset=dataset).order_by("-id")[:size])[::-1]
        reasonings, reviews = [], []
        for sample in samples:
            label = sample.label
            for mode in (Mode.FREE, Mode.WITH_DEFINITIONS, Mode.LIMITED):
                correct = rng.random() < (0.75, 0.88, 0.9)[mode - 1]
                predicted = label if correct else categories[rng.randrange(len(categories))]
                length = rng.randrange(40, 95) if mode == Mode.LIMITED and rng.random() < 0.95 else rng.randrange(60, 200)
                reasonings.append(Reasoning(
                    sample=sample, mode=mode, output=f"推理：{'细节' * (length // 4)}。\n类别：{predicted.name}",
                    predicted_name=predicted.name, predicted_category=predicted,
                    is_correct=predicted.pk == label.pk, length=length,
                ))
            if rng.random() < 0.1:
                corrected = rng.random() < 0.5
                label_error = not corrected and rng.random() < 0.1
                reviews.append(Review(
                    sample=sample, reviewer=reviewer, version=1,
                    cause=rng.choice([Cause.DEFINITIONS_OVERLAP, Cause.MODEL_WEAK, Cause.NONE]),
                    corrected_output=f"推理：人工修正。\n类别：{label.name}" if corrected else "",
                    corrected_category=label if corrected else None, corrected_length=12 if corrected else 0,
                    label_error=label_error, suggested_label=others[0] if label_error else None,
                    judged_versions={"1": 1, "2": 1, "3": 1}, updated_at=now,
                ))
        Reasoning.objects.bulk_create(reasonings, batch_size=2000)
        Review.objects.bulk_create(reviews, batch_size=2000)
        created += size
    return dataset, categories, reviewer


def _verdict(p95: float, target: float) -> str:
    return "met" if p95 < target else "MISSED"


def _bare_jsonl(dataset, path: Path) -> int:
    """The floor: id, prompt, response and images of the samples the export writes, read straight
    from the stored columns (no status logic), one json.dumps per line."""
    from django.db.models import FilteredRelation, Q

    from review.exports import _PromptCache
    from review.models import Mode, Sample

    prompt = "<image>" + _PromptCache(dataset).get(None)
    rows = (
        Sample.objects.filter(dataset=dataset, export_status__in=("kept", "corrected"))
        .annotate(m3=FilteredRelation("reasonings", condition=Q(reasonings__mode=Mode.LIMITED)))
        .order_by("label__position", "label__name", "external_id")
        .values_list("external_id", "image", "m3__output", "review__corrected_output")
    )
    count = 0
    with open(path, "w", encoding="utf-8") as fh:
        for external_id, image, output, corrected in rows.iterator(chunk_size=2000):
            fh.write(json.dumps({"id": external_id, "prompt": prompt, "response": corrected or output,
                                 "images": [image]}, ensure_ascii=False) + "\n")
            count += 1
    return count


def main() -> None:
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from review.counts import refresh_all
    from review.exports import write_trainset
    from review.models import Sample
    from review.selectors import QUEUE_SORTS, queue_filters
    from review.suspicion import suspicions_fill_missing

    with throwaway_database("bench-scale-") as tmp:
        started = time.perf_counter()
        dataset, categories, reviewer = _generate(SAMPLES, BIG)
        print(f"   generated {SAMPLES:,} samples ({BIG:,} in one class; 3 modes each) in {connection.vendor} "
              f"in {time.perf_counter() - started:.0f} s")
        if connection.vendor == "postgresql":
            # A bulk load leaves the planner without statistics until autovacuum analyses the tables
            # (this machine's server runs with autovacuum off): without them it estimated thousands of
            # reasonings per sample and JIT-compiled every refresh query (1.5 s each).
            started = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            print(f"   ANALYZE after the bulk load: {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        refresh_all()
        print(f"   recompute every stored verdict and counter (refresh_counts): {time.perf_counter() - started:.0f} s")
        # An import computes each sample's label-error suspicion as it writes it; rows bulk-created
        # here have none, and a sample page computes a missing one on first view (a write in every
        # measured GET). The measured class's are computed first, as its import would have.
        started = time.perf_counter()
        suspicions_fill_missing(samples=Sample.objects.filter(label=categories[0]))
        print(f"   label-error suspicion of the {BIG:,} samples of the measured class: {time.perf_counter() - started:.0f} s")
        if connection.vendor == "postgresql":
            # The refresh rewrote every row (the suspicions, the measured class's), which autovacuum
            # would follow with a VACUUM ANALYZE: until then the statistics say every verdict is its
            # default (the planner took a 10,000-row filter for 1 row and sorted it: queue pages
            # 200-900 ms) and the index-only scans that count a queue position read the table too
            # (nothing is marked all-visible).
            started = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
            print(f"   VACUUM ANALYZE after the refresh: {time.perf_counter() - started:.0f} s")

        client = Client()
        client.force_login(reviewer)
        rng = random.Random(11)
        big = categories[0]
        big_ids = list(Sample.objects.filter(label=big).values_list("pk", flat=True)[:: max(1, BIG // 2000)])
        worst_sample = worst_queue = 0.0
        print(f"   {'filter':<12} {'sort':<18} {'sample p95':>11} {'queue p95':>10}   (target < {PAGE_TARGET_MS} ms)")
        for filter_key in queue_filters():
            for sort_key in QUEUE_SORTS:
                query = f"?f={filter_key}&s={sort_key}"
                sample_urls = [reverse("review:sample", args=[rng.choice(big_ids)]) + query for _ in range(REQUESTS)]
                queue_urls = [reverse("review:queue", args=[big.pk]) + query + f"&page={rng.randrange(1, 20)}"
                              for _ in range(REQUESTS)]
                _, sample_p95 = request_times(client, sample_urls)
                _, queue_p95 = request_times(client, queue_urls)
                worst_sample, worst_queue = max(worst_sample, sample_p95), max(worst_queue, queue_p95)
                print(f"   {filter_key:<12} {sort_key:<18} {sample_p95:8.1f} ms {queue_p95:7.1f} ms")
        print(f"   sample page worst p95 {worst_sample:6.1f} ms  target < {PAGE_TARGET_MS} ms  "
              f"{_verdict(worst_sample, PAGE_TARGET_MS)}")
        print(f"   queue page  worst p95 {worst_queue:6.1f} ms  target < {PAGE_TARGET_MS} ms  "
              f"{_verdict(worst_queue, PAGE_TARGET_MS)}")
        _, p95 = request_times(client, [reverse("analysis:overview", args=[dataset.pk])] * 10)
        print(f"   analysis overview p95 {p95:6.1f} ms  target < {OVERVIEW_TARGET_MS} ms  {_verdict(p95, OVERVIEW_TARGET_MS)}")
        _, p95 = request_times(client, [reverse("review:home") + f"?dataset={dataset.pk}"] * 10)
        print(f"   home page         p95 {p95:6.1f} ms  target < {OVERVIEW_TARGET_MS} ms  {_verdict(p95, OVERVIEW_TARGET_MS)}")

        started = time.perf_counter()
        bare_rows = _bare_jsonl(dataset, tmp / "bare.jsonl")
        bare = time.perf_counter() - started
        started = time.perf_counter()
        report = write_trainset(dataset=dataset, fmt="jsonl", path=tmp / "train.jsonl")
        took = time.perf_counter() - started
        ratio = took / bare
        print(f"   export jsonl {took:6.1f} s for {report.rows:,} rows; bare json-lines write {bare:6.1f} s "
              f"({bare_rows:,} rows): {ratio:.2f}x  target ≤ {EXPORT_TARGET}x  {'met' if ratio <= EXPORT_TARGET else 'MISSED'}")
        import tracemalloc

        tracemalloc.start()
        write_trainset(dataset=dataset, fmt="jsonl", path=tmp / "train-traced.jsonl")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"   export peak Python memory {peak / 1e6:6.1f} MB for {SAMPLES:,} samples (streams)")
