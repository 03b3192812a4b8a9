"""Job engine throughput: 2,000 classification items against the simulator at 200 ms latency.

Prints items/s at concurrency 32 next to the ideal (concurrency ÷ latency) and a sequential
baseline (concurrency 1), and the executing process's memory over the run.

Runs in a child process with its own throwaway SQLite database and media folder (never your dev
data), with the simulator in a separate process so the two don't share a GIL. The job runs through
`job_execute` — the same code a Celery worker runs for the job's message.
`python -m bench jobs`; BENCH_JOBS_ITEMS / BENCH_JOBS_CONCURRENCY / BENCH_JOBS_LATENCY_MS override.
"""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ITEMS = int(os.environ.get("BENCH_JOBS_ITEMS", 2000))
CONCURRENCY = int(os.environ.get("BENCH_JOBS_CONCURRENCY", 32))
LATENCY_MS = float(os.environ.get("BENCH_JOBS_LATENCY_MS", 200))
SEQUENTIAL_ITEMS = 40


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="datafix-bench-jobs-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update({"DATAFIX_VAR_DIR": tmp, "DJANGO_SETTINGS_MODULE": "config.settings.local", "LOG_LEVEL": "WARNING"})
        subprocess.run([sys.executable, "-c", "from bench.bench_jobs import child; child()"], cwd=ROOT, env=env,
                       check=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child() -> None:
    import threading
    import urllib.request

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from PIL import Image

    from review.image_marker import draw_marker
    from pipelines.jobs.engine import job_execute
    from pipelines.jobs.selectors import job_progress
    from pipelines.jobs.services import job_create
    from review.demo_catalog import DEMO_CATEGORIES
    from review.models import Category, Dataset, Sample

    call_command("migrate", verbosity=0)
    media = Path(settings.MEDIA_ROOT)
    media.mkdir(parents=True, exist_ok=True)

    dataset = Dataset.objects.create(name="bench")
    categories = [Category.objects.create(dataset=dataset, name=c.name, definition=c.definition, position=i)
                  for i, c in enumerate(DEMO_CATEGORIES)]
    (media / "bench").mkdir(exist_ok=True)
    samples = []
    for n in range(ITEMS + SEQUENTIAL_ITEMS):
        index = n % len(categories)
        image = Image.new("RGB", (160, 96), (200, 180 + n % 60, 220))
        draw_marker(image, index)
        relative = f"bench/{n:05d}.png"
        image.save(media / relative, "PNG")
        samples.append(Sample(dataset=dataset, external_id=f"b{n:05d}", image=relative, label=categories[index]))
    Sample.objects.bulk_create(samples, batch_size=500)
    ids = list(Sample.objects.filter(dataset=dataset).order_by("external_id").values_list("pk", flat=True))

    port = _free_port()
    simulator = subprocess.Popen(
        [sys.executable, "manage.py", "llm_simulator", "--port", str(port), "--latency-ms", str(LATENCY_MS)],
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
        settings.LLM_REQUESTS_PER_MINUTE = 0

        def run(sample_ids, concurrency, sample_memory=False):
            job = job_create(kind="classification", params={"dataset": "bench", "mode": 2, "sample_ids": sample_ids,
                                                            "concurrency": concurrency}, enqueue=False)
            memory: list[tuple[float, float]] = []
            stop = threading.Event()

            def sampler():
                while not stop.wait(0.25):
                    memory.append((time.perf_counter(), _rss_mb()))

            thread = threading.Thread(target=sampler, daemon=True)
            if sample_memory:
                thread.start()
            started = time.perf_counter()
            cpu_started = time.process_time()
            outcome = job_execute(job_id=job.pk)
            elapsed = time.perf_counter() - started
            memory.append((elapsed, time.process_time() - cpu_started))  # last entry: CPU seconds
            stop.set()
            job.refresh_from_db()
            return job, outcome, elapsed, memory, started

        _, _, seq_elapsed, _, _ = run(ids[ITEMS:], 1)
        load = os.getloadavg()[0]
        sequential_rate = SEQUENTIAL_ITEMS / seq_elapsed

        rss_before = _rss_mb()
        job, outcome, elapsed, memory, started = run(ids[:ITEMS], CONCURRENCY, sample_memory=True)
        cpu_seconds = memory.pop()[1]
        progress = job_progress(job)
        rate = ITEMS / elapsed
        ideal = CONCURRENCY / (LATENCY_MS / 1000)
        print(f"   items: {ITEMS}, concurrency {CONCURRENCY}, simulator latency {LATENCY_MS:.0f} ms → job {outcome}: "
              f"done {progress.done}, failed {progress.failed} (unparseable answers are failed items)")
        print(f"   throughput:  {rate:7.1f} items/s  ({elapsed:.1f} s)")
        print(f"   ideal:       {ideal:7.1f} items/s  (concurrency ÷ latency) → {100 * rate / ideal:.0f} % of ideal")
        print(f"   sequential:  {sequential_rate:7.1f} items/s  (concurrency 1, {SEQUENTIAL_ITEMS} items) → "
              f"{rate / sequential_rate:.1f}× faster")
        print(f"   engine CPU: {1000 * cpu_seconds / ITEMS:.1f} ms per item (both threads); machine load average "
              f"{load:.1f} on {os.cpu_count()} cores — the ideal needs a free core for the engine and one for the simulator")
        if memory:
            quarters = [memory[min(len(memory) - 1, int(len(memory) * q))][1] for q in (0.0, 0.25, 0.5, 0.75)]
            quarters.append(memory[-1][1])
            print(f"   memory (RSS MB) before {rss_before:.0f}; at 0/25/50/75/100 % of the run: "
                  + " / ".join(f"{m:.0f}" for m in quarters) + f"; peak {max(m for _, m in memory):.0f}")
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)


if __name__ == "__main__":
    main()
