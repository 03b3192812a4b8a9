"""Importing the team's folder, and the way back, at scale.

Builds a `train/` folder shaped like the team's (23 classes, `reasonbyQwen72b_model{1,2,3}/<class>/
save_train_<class>.json` pretty-printed arrays, `info_ectra/` comma lines, `train.json`, a small PNG
per sample under absolute Windows paths mapped with --image-root), then prints the time to import
it, to import it again unchanged, and to export it back in the team layout. BENCH_IMPORT_SAMPLES
sets the size (default 10,000; the team's real set is 700). Throwaway database, asserts nothing.
"""
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

SAMPLES = int(os.environ.get("BENCH_IMPORT_SAMPLES", "10000"))
WINDOWS_IMAGES = "E:\\天池比赛\\tianchi\\train\\images\\"


def _build(root: Path, image_root: Path, n: int) -> None:
    from PIL import Image

    from review.demo_catalog import DEMO_CATEGORIES

    names = [c.name for c in DEMO_CATEGORIES]
    by_class: dict[str, list[dict]] = {name: [] for name in names}
    (image_root / "images").mkdir(parents=True)
    for i in range(n):
        label = names[i % len(names)]
        Image.new("RGB", (16, 16), (i % 256, (i // 256) % 256, 90)).save(image_root / "images" / f"{i:07d}.png")
        by_class[label].append({"id": f"s-{i:07d}", "image": [f"{WINDOWS_IMAGES}{i:07d}.png"], "label": label})
    for mode in (1, 2, 3):
        for label, records in by_class.items():
            rows = [{"id": r["id"], "image": r["image"],
                     "output": f"观察：截图中是{label}的页面元素，{'细节' * (10 + mode * 8)}。\n类别：{label}"}
                    for r in records]
            path = root / f"reasonbyQwen72b_model{mode}" / label / f"save_train_{label}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(rows, ensure_ascii=False, indent=4), encoding="utf-8")
    everyone = [r for records in by_class.values() for r in records]
    (root / "train.json").write_text(json.dumps(
        [{"id": r["id"], "instruction": "请对图片分类", "image": r["image"], "output": r["label"]} for r in everyone],
        ensure_ascii=False), encoding="utf-8")
    info = root / "info_ectra"
    info.mkdir()
    for part in range(0, len(everyone), 100):
        with (info / f"info_{part // 100}.json").open("w", encoding="utf-8") as fh:
            for r in everyone[part:part + 100]:
                fh.write(json.dumps({"id": r["id"], "image": r["image"], "output": r["label"],
                                    "picture2text": "页面顶部是标题栏，中间是订单信息。"}, ensure_ascii=False) + ",\n")


def main() -> None:
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    from review.importers import import_classification
    from review.models import Dataset
    from review.team_layout import write_team_layout

    settings.DEBUG = False
    tmp = Path(tempfile.mkdtemp(prefix="bench-import-"))
    settings.MEDIA_ROOT = tmp / "media"
    if connection.vendor == "sqlite":
        connection.settings_dict.setdefault("TEST", {})["NAME"] = str(tmp / "bench.sqlite3")
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        started = time.perf_counter()
        _build(tmp / "train", tmp / "local", SAMPLES)
        print(f"   built a team folder of {SAMPLES:,} samples in {time.perf_counter() - started:.1f} s")
        for run in ("first import", "again, unchanged"):
            started = time.perf_counter()
            report = import_classification(path=tmp / "train", dataset_name="bench", image_root=tmp / "local",
                                           create_classes=True)
            took = time.perf_counter() - started
            s = report.saved
            print(f"   {run:<17} {took:7.1f} s   {report.samples_imported / took:8.0f} samples/s   "
                  f"({report.records_read:,} records; samples +{s.samples_created:,} ~{s.samples_updated:,}; "
                  f"reasonings +{s.reasonings_created:,} ~{s.reasonings_updated:,}; problems {len(report.problems)})")
        started = time.perf_counter()
        layout, written = write_team_layout(dataset=Dataset.objects.get(name="bench"), directory=tmp / "out")
        took = time.perf_counter() - started
        print(f"   export --layout team  {took:6.1f} s   {layout.rows:,} rows in {len(written)} files")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"   peak resident memory of this process: {peak:.0f} MB ({connection.vendor})")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
        shutil.rmtree(tmp, ignore_errors=True)
