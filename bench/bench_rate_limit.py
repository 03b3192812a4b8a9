"""The adaptive request rate against a server's real limit: 100 classification items, 30 requests
per minute, no rate setting (LLM_REQUESTS_PER_MINUTE unset, the defaults of a fresh install).

Two servers: a sliding one-minute window answering 429 with a precise Retry-After (OpenAI-like),
and fixed per-minute windows answering only LiteLLM's relayed `llm_provider-retry-after: 60`.
Prints per scenario: items done / failed, requests sent, 429s, duration, and the effective rate
(answered requests per minute) against the limit. The target is 0 failed at ≥ 90 % of the limit.
Takes about 3.5 minutes per scenario (it is a real minute-based limit).

Runs in a child process with its own throwaway SQLite database and media folder, the simulator in
another process. `python -m bench rate_limit`; BENCH_RATE_ITEMS, BENCH_RATE_LIMIT,
BENCH_RATE_SCENARIOS=sliding,litellm override.
"""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ITEMS = int(os.environ.get("BENCH_RATE_ITEMS", 100))
LIMIT = int(os.environ.get("BENCH_RATE_LIMIT", 30))
LATENCY_MS = 300
SCENARIOS = {
    "sliding": ("sliding 60 s window, Retry-After", []),
    "litellm": ("fixed per-minute windows, LiteLLM's llm_provider-retry-after: 60 only",
                ["--rate-window-fixed", "--retry-headers", "litellm"]),
}


def main() -> None:
    chosen = [s for s in os.environ.get("BENCH_RATE_SCENARIOS", ",".join(SCENARIOS)).split(",") if s in SCENARIOS]
    for name in chosen:
        with tempfile.TemporaryDirectory(prefix="datafix-bench-rate-") as tmp:
            env = {k: v for k, v in os.environ.items()
                   if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("LLM_")}
            env.update({"DATAFIX_VAR_DIR": tmp, "DJANGO_SETTINGS_MODULE": "config.settings.local",
                        "LOG_LEVEL": "WARNING", "BENCH_RATE_SCENARIO": name})
            subprocess.run([sys.executable, "-c", "from bench.bench_rate_limit import child; child()"], cwd=ROOT,
                           env=env, check=True)


def child() -> None:
    import urllib.request

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from PIL import Image

    from bench.bench_jobs import _free_port
    from review.image_marker import draw_marker
    from pipelines.jobs.services import job_create, run_job_inline
    from review.demo_catalog import DEMO_CATEGORIES
    from review.models import Category, Dataset, Sample

    name = os.environ["BENCH_RATE_SCENARIO"]
    label, flags = SCENARIOS[name]
    call_command("migrate", verbosity=0)
    media = Path(settings.MEDIA_ROOT)
    (media / "bench").mkdir(parents=True, exist_ok=True)
    dataset = Dataset.objects.create(name="bench-rate")
    categories = [Category.objects.create(dataset=dataset, name=c.name, definition=c.definition, position=i)
                  for i, c in enumerate(DEMO_CATEGORIES)]
    samples = []
    for n in range(ITEMS):
        image = Image.new("RGB", (160, 96), (200, 180 + n % 60, 220))
        draw_marker(image, n % len(categories))
        image.save(media / f"bench/{n:05d}.png", "PNG")
        samples.append(Sample(dataset=dataset, external_id=f"r{n:05d}", image=f"bench/{n:05d}.png",
                              label=categories[n % len(categories)]))
    Sample.objects.bulk_create(samples)

    port = _free_port()
    simulator = subprocess.Popen(
        [sys.executable, "manage.py", "llm_simulator", "--port", str(port), "--latency-ms", str(LATENCY_MS),
         "--rate-limit", str(LIMIT), "--rate-window", "60", *flags],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        settings.OPENAI_BASE_URL = f"http://127.0.0.1:{port}/v1"
        job = job_create(kind="classification", params={"dataset": dataset.name, "mode": 2}, enqueue=False)
        started = time.perf_counter()
        job = run_job_inline(job)
        elapsed = time.perf_counter() - started
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)
    llm = job.report["engine"]["llm"]
    failed_kinds = dict(job.items.filter(status="failed").values_list("error_kind").annotate(
        n=django.db.models.Count("id")))
    limited = llm["errors"].get("rate_limited", 0)
    effective = llm["succeeded"] / elapsed * 60
    print(f"   [{name}] {label}")
    print(f"     items {ITEMS}: done {job.items_done}, failed {job.items_failed} {failed_kinds or ''}"
          f"(unparseable answers are the simulator's deliberate hedges, not rate failures)")
    print(f"     requests sent {llm['requests']} (answered {llm['succeeded']}, 429 {limited}), {elapsed:.0f} s")
    print(f"     effective rate {effective:.1f}/min vs limit {LIMIT}/min → {100 * effective / LIMIT:.0f} % "
          f"(learned rate at the end: {job.report['engine']['rate']['current_per_minute']}/min)")
