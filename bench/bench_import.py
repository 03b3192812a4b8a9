"""Importing the team's folder at scale, beside a bare floor (`bench/import_floor.py`).

Builds a `train/` folder shaped like the team's (23 classes, `reasonbyQwen72b_model{1,2,3}/<class>/
save_train_<class>.json` pretty-printed arrays, `info_ectra/` comma lines, `train.json`, a small JPEG
per sample under absolute Windows paths mapped with --image-root) of BENCH_IMPORT_SAMPLES samples
(default 100,000), once with images and once without. For each, in a fresh database (PostgreSQL
when DATABASE_URL is set, else SQLite), it runs as separate processes:

- the floor: `json.load` of the same files, `executemany` of the same rows, `shutil.copyfile` of the
  same images, one transaction;
- `manage.py import_classification` of the folder, while this process saves a reviewer's review
  every 0.2 s (the longest wait is printed: a running import must not block reviewers);
- the same import again, unchanged (once).

The floor and the import run in turn BENCH_IMPORT_REPEATS times (default 3), each pair in a fresh
database after `sync`, and each is timed by its best run, as `bench_extraction` does: on a shared
machine a slow run measures the other tenants (every run is printed).

It prints each figure beside its target: import ≤ 2× the floor with images and ≤ 5× without,
peak resident memory < 300 MB (also at BENCH_IMPORT_MEMORY_SAMPLES, default 10,000, to show it
flat), a reviewer's save ≤ 1 s. Wall times on a shared machine vary; CPU seconds are printed too.
Asserts nothing.
"""
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

SAMPLES = int(os.environ.get("BENCH_IMPORT_SAMPLES", "100000"))
MEMORY_SAMPLES = [int(n) for n in os.environ.get("BENCH_IMPORT_MEMORY_SAMPLES", "10000").split(",") if n.strip()]
WINDOWS_IMAGES = "E:\\天池比赛\\tianchi\\train\\images\\"
BASE_DIR = Path(__file__).resolve().parent.parent
PROBE_EVERY = 0.2
REPEATS = max(1, int(os.environ.get("BENCH_IMPORT_REPEATS", "3")))


def build(root: Path, image_root: Path | None, n: int) -> None:
    """A team folder of `n` samples; with `image_root`, a 32×32 JPEG per sample there."""
    from PIL import Image

    from review.demo_catalog import DEMO_CATEGORIES

    names = [c.name for c in DEMO_CATEGORIES]
    by_class: dict[str, list[dict]] = {name: [] for name in names}
    if image_root is not None:
        (image_root / "images").mkdir(parents=True)
    for i in range(n):
        label = names[i % len(names)]
        record = {"id": f"s-{i:07d}", "label": label}
        if image_root is not None:
            image = Image.new("RGB", (32, 32), (i % 256, (i // 256) % 256, 90))
            image.putpixel((i % 32, (i // 32) % 32), (255 - i % 256, 10, (i // 1024) % 256))
            image.save(image_root / "images" / f"{i:07d}.jpg", quality=90)
            record["image"] = [f"{WINDOWS_IMAGES}{i:07d}.jpg"]
        by_class[label].append(record)
    for mode in (1, 2, 3):
        for label, records in by_class.items():
            rows = [{"id": r["id"], **({"image": r["image"]} if "image" in r else {}),
                     "output": f"观察：截图中是{label}的页面元素，{'细节' * (10 + mode * 8)}。\n类别：{label}"}
                    for r in records]
            path = root / f"reasonbyQwen72b_model{mode}" / label / f"save_train_{label}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(rows, ensure_ascii=False, indent=4), encoding="utf-8")
    everyone = [r for records in by_class.values() for r in records]
    (root / "train.json").write_text(json.dumps(
        [{"id": r["id"], "instruction": "请对图片分类", **({"image": r["image"]} if "image" in r else {}),
          "output": r["label"]} for r in everyone], ensure_ascii=False), encoding="utf-8")
    info = root / "info_ectra"
    info.mkdir()
    for part in range(0, len(everyone), 1000):
        with (info / f"info_{part // 1000}.json").open("w", encoding="utf-8") as fh:
            for r in everyone[part:part + 1000]:
                fh.write(json.dumps({"id": r["id"], **({"image": r["image"]} if "image" in r else {}),
                                    "output": r["label"], "picture2text": "页面顶部是标题栏，中间是订单信息。"},
                                   ensure_ascii=False) + ",\n")


# --------------------------------------------------------------------------- databases and processes
def _child_database_url(settings_dict: dict) -> str:
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{settings_dict['NAME']}"


@contextmanager
def fresh_database(tmp: Path, name: str):
    """A new, migrated database for one comparison; yields the URL child processes use."""
    from django.db import connection

    if connection.vendor == "sqlite":
        connection.settings_dict["TEST"]["NAME"] = str(tmp / f"{name}.sqlite3")
    else:
        connection.settings_dict["TEST"]["NAME"] = f"bench_import_{name}_{os.getpid()}"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield _child_database_url(connection.settings_dict)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def _peak_rss_mb(pid: int) -> float:
    """The process's own peak resident memory (VmHWM), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Run:
    """One child process: wall and CPU seconds, peak resident memory, its output.

    The peak is the child's VmHWM, read while it runs: `ru_maxrss` of a child also counts this
    (large) bench process, whose memory the child had until it exec'd."""

    def __init__(self, args: list[str], env: dict, *, while_running=None):
        out = tempfile.TemporaryFile(mode="w+")
        started = time.perf_counter()
        process = subprocess.Popen(args, env=env, cwd=BASE_DIR, stdout=out, stderr=subprocess.STDOUT, text=True)
        self.peak_mb = 0.0
        while True:
            self.peak_mb = max(self.peak_mb, _peak_rss_mb(process.pid))
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if while_running is not None:
                while_running()
            time.sleep(PROBE_EVERY if while_running is not None else 0.02)
        self.seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        self.cpu = usage.ru_utime + usage.ru_stime
        out.seek(0)
        self.output = out.read()
        out.close()
        if process.returncode:
            raise RuntimeError(f"{' '.join(args[:4])} … exited {process.returncode}:\n{self.output[-3000:]}")


class ReviewerProbe:
    """Saves a review on a sample of another dataset, as a reviewer would, and keeps the longest wait."""

    def __init__(self):
        from django.contrib.auth import get_user_model

        from review.models import Assignment, Category, Dataset, Sample

        dataset = Dataset.objects.create(name="reviewer-probe")
        category = Category.objects.create(dataset=dataset, name="换货页面")
        self.user = get_user_model().objects.create_user(username="probe-reviewer", password="x" * 12)
        Assignment.objects.create(category=category, reviewer=self.user)
        self.sample = Sample.objects.create(dataset=dataset, external_id="probe", label=category)
        self.waits: list[float] = []
        self.failures: list[str] = []

    def __call__(self):
        from core.errors import ApplicationError
        from review.models import Review
        from review.services import review_save

        version = Review.objects.filter(sample=self.sample).values_list("version", flat=True).first() or 0
        started = time.perf_counter()
        try:
            review_save(sample=self.sample, user=self.user, cause="", corrected_output="", label_error=False,
                        suggested_label=None, note=f"检查 {len(self.waits)}", version=version)
        except (ApplicationError, Exception) as exc:  # noqa: BLE001 - "database is locked" is what we look for
            self.failures.append(f"{type(exc).__name__}: {exc}")
        self.waits.append(time.perf_counter() - started)


def _delete_floor_rows() -> None:
    from django.db import connection

    from review.models import Category, Dataset, Reasoning, Sample

    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model in (Reasoning, Sample, Category, Dataset):
            cursor.execute(f"DELETE FROM {quote(model._meta.db_table)}")


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


# --------------------------------------------------------------------------- the comparison
def compare(tmp: Path, label: str, *, images: bool, target: float) -> None:
    """The floor and the import of one folder, REPEATS times in turn, each pair in a fresh database;
    then the import again, unchanged, and (with images) the export. The ratio is of the best runs:
    on a shared machine the slowest run measures the machine's other tenants, for either side."""
    from django.db import connection

    work = tmp / label.replace(" ", "-")
    started = time.perf_counter()
    build(work / "train", work / "local" if images else None, SAMPLES)
    print(f"   {label}: team folder of {SAMPLES:,} samples built in {time.perf_counter() - started:.0f} s")
    floors, imports, waits, failures = [], [], [], []
    for attempt in range(1, REPEATS + 1):
        last = attempt == REPEATS
        with fresh_database(tmp, f"{label.replace(' ', '_')}_{attempt}") as url:
            media = work / f"media-{attempt}"
            env = {**os.environ, "DATABASE_URL": url, "MEDIA_ROOT": str(media), "DEBUG": "0",
                   "IMPORT_STAGING_ROOT": str(work / "staging"),
                   "DJANGO_SETTINGS_MODULE": "config.settings.local"}
            os.sync()  # what the build or the run before left to write back is not this run's work
            floor = Run([sys.executable, "-m", "bench.import_floor", str(work / "train"),
                         str(work / "local") if images else "-", str(media / "floor"), "floor"], env)
            _delete_floor_rows()
            probe = ReviewerProbe()
            command = [sys.executable, "manage.py", "import_classification", str(work / "train"), "--dataset",
                       "bench", "--create-classes",
                       *(["--image-root", str(work / "local")] if images else [])]
            os.sync()
            first = Run(command, env, while_running=probe)
            floors.append(floor)
            imports.append(first)
            waits.extend(probe.waits)
            failures.extend(probe.failures)
            summary = next((line for line in first.output.splitlines()
                            if line.startswith("读取记录")), "").strip()
            print(f"   {label}, run {attempt}: floor {floor.seconds:5.1f} s (cpu {floor.cpu:5.1f} s), import "
                  f"{first.seconds:5.1f} s (cpu {first.cpu:5.1f} s) = {first.seconds / floor.seconds:.2f}x, "
                  f"peak {first.peak_mb:.0f} MB   {summary if attempt == 1 else ''}".rstrip())
            if last:
                again = Run(command, env)
                export = ""
                if images:
                    from review.models import Dataset
                    from review.team_layout import write_team_layout

                    started = time.perf_counter()
                    layout, written = write_team_layout(dataset=Dataset.objects.get(name="bench"),
                                                        directory=work / "out")
                    export = (f"   {label}: export --layout team {time.perf_counter() - started:.1f} s, "
                              f"{layout.rows:,} rows in {len(written)} files")
            connection.close()
        shutil.rmtree(media, ignore_errors=True)
    floor, best = min(floors, key=lambda run: run.seconds), min(imports, key=lambda run: run.seconds)
    ratio = best.seconds / floor.seconds
    print(f"   {label}: floor {floor.seconds:6.1f} s (cpu {floor.cpu:5.1f} s)   {floor.output.strip()}"
          f"   (best of {len(floors)})")
    print(f"   {label}: import {best.seconds:5.1f} s (cpu {best.cpu:5.1f} s) = {ratio:.2f}x the floor "
          f"(target ≤ {target:g}x: {_mark(ratio <= target)})   (best of {len(imports)}; CPU "
          f"{best.cpu / floor.cpu:.2f}x)")
    peak = max(run.peak_mb for run in imports)
    print(f"   {label}: peak memory of the import {peak:.0f} MB (target < 300 MB: {_mark(peak < 300)})")
    longest = max(waits, default=0.0)
    print(f"   {label}: a reviewer's save during the imports: longest wait {longest * 1000:.0f} ms over "
          f"{len(waits)} saves, {len(failures)} failed (target ≤ 1000 ms, none failed: "
          f"{_mark(longest <= 1.0 and not failures)})"
          + (f"  first failure: {failures[0]}" if failures else ""))
    print(f"   {label}: again, unchanged {again.seconds:5.1f} s (cpu {again.cpu:5.1f} s), peak {again.peak_mb:.0f} MB")
    if export:
        print(export)
    shutil.rmtree(work, ignore_errors=True)


def memory_at(tmp: Path, n: int) -> None:
    work = tmp / f"memory-{n}"
    build(work / "train", None, n)
    with fresh_database(tmp, f"memory_{n}") as url:
        env = {**os.environ, "DATABASE_URL": url, "MEDIA_ROOT": str(work / "media"), "DEBUG": "0",
               "IMPORT_STAGING_ROOT": str(work / "staging"), "DJANGO_SETTINGS_MODULE": "config.settings.local"}
        run = Run([sys.executable, "manage.py", "import_classification", str(work / "train"), "--dataset", "bench",
                   "--create-classes"], env)
    print(f"   without images, {n:,} samples: import {run.seconds:.1f} s, peak memory {run.peak_mb:.0f} MB "
          f"(target < 300 MB: {_mark(run.peak_mb < 300)})")
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    settings.DEBUG = False
    tmp = Path(tempfile.mkdtemp(prefix="bench-import-"))
    setup_test_environment()
    try:
        print(f"   database: {connection.vendor}; {os.cpu_count()} CPUs, load average "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
        compare(tmp, "with images", images=True, target=2)
        compare(tmp, "without images", images=False, target=5)
        for n in MEMORY_SAMPLES:
            memory_at(tmp, n)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"   (this bench process itself peaked at {peak:.0f} MB building the folders)")
    finally:
        teardown_test_environment()
        shutil.rmtree(tmp, ignore_errors=True)
