"""`make compat`, step 1 (the project's own .venv): every export kind, made from the demo data.

    .venv/bin/python compat/make_exports.py WORKDIR

Makes a fresh SQLite database, MEDIA_ROOT and EXPORT_ROOT under WORKDIR, loads the demo, runs a
generation job (against the bundled simulator) and two DPO jobs (text pairs from feedback, image
pairs from the classification set), then exports every format through the product's own export
service. Writes WORKDIR/manifest.json: one entry per export (folder, data file, format, rows,
images, dataset_info name, the consumers docs/formats.md claims for it), read by the check scripts.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Which consumer each format is claimed for (docs/formats.md's table of consumers says the same).
CONSUMERS = {
    "alpaca": ["llamafactory"],
    "sharegpt": ["llamafactory"],
    "sharegpt_multimodal": ["llamafactory"],
    "openai": ["llamafactory", "trl_sft"],
    "trl_prompt_completion": ["trl_sft", "llamafactory"],
    "trl_messages": ["trl_sft"],
    "jsonl": [],  # datafix's own record lines: for scripts, not a trainer format
    "alpaca_preference": ["llamafactory"],
    "sharegpt_preference": ["llamafactory"],
    "trl_preference": ["trl_dpo", "llamafactory"],
    "trl_preference_conversational": ["trl_dpo"],
    "prompt_chosen_reject": ["seed_reader", "llamafactory"],
}


def main(workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "MEDIA_ROOT": str(workdir / "media"),
        "EXPORT_ROOT": str(workdir / "exports"),
        "CELERY_TASK_ALWAYS_EAGER": "1",
    })
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from pipelines.datasets import formats
    from pipelines.datasets.exports import build_export, data_files
    from pipelines.datasets.options import BuildOptions
    from pipelines.datasets.selectors import product_sources
    from pipelines.dpo.services import EXPORT_FORMATS, IMAGE_EXPORT_FORMATS, pairs_export
    from pipelines.generation.services import generation_export
    from pipelines.jobs.services import job_create, run_job_inline
    from pipelines.models import JobKind
    from pipelines.llm.simulator.server import serve_in_thread
    from review.exports import TRAINSET_FORMATS, trainset_export
    from review.models import Dataset

    call_command("migrate", verbosity=0, interactive=False)
    call_command("load_demo", sample_count=120, stdout=open(os.devnull, "w"))
    admin = get_user_model().objects.filter(is_staff=True).order_by("id").first()
    exports = []

    for fmt in TRAINSET_FORMATS:
        exports.append(("trainset", trainset_export(dataset=Dataset.objects.order_by("id").first(), fmt=fmt, user=admin)))

    for fmt in ("alpaca", "sharegpt", "openai", "trl_prompt_completion"):
        sources = product_sources(logs=True, feedback=True, feedback_min_rating=1)
        export, _ = build_export(sources, BuildOptions(format=fmt, split_ratio=(0.8, 0.2), dataset_name=f"mix_{fmt}"),
                                 kind="builder", file_name=f"mix_{fmt}.json", user=admin, label=fmt)
        exports.append(("builder", export))

    simulator = serve_in_thread(port=0)
    settings.OPENAI_BASE_URL = simulator.base_url
    settings.OPENAI_API_KEY = "sk-compat"
    try:
        from pipelines.models import SourceItem

        collection = SourceItem.objects.values_list("collection", flat=True).first()
        run = run_job_inline(job_create(kind=JobKind.GENERATION, params={"collection": collection, "limit": 12},
                                        user=admin))
        exports.append(("generation", generation_export(job=run, user=admin)))
    finally:
        simulator.stop()

    from pipelines.models import FeedbackSample, ReviewDecision

    # A reviewer accepts the well-rated feedback: the DPO job's chosen answers.
    FeedbackSample.objects.filter(rating__gte=4).update(decision=ReviewDecision.ACCEPTED)
    text_job = run_job_inline(job_create(kind=JobKind.DPO, user=admin, params={
        "source": {"name": "feedback"}, "strategy": {"name": "near_miss"}}))
    image_job = run_job_inline(job_create(kind=JobKind.DPO, user=admin, params={
        "source": {"name": "classification", "dataset": Dataset.objects.order_by("id").first().name},
        "strategy": {"name": "truncate"}}))
    for fmt in EXPORT_FORMATS:
        exports.append(("dpo", pairs_export(job=text_job, fmt=fmt, user=admin, include_flagged=True)))
    for fmt in IMAGE_EXPORT_FORMATS:
        exports.append(("dpo-images", pairs_export(job=image_job, fmt=fmt, user=admin, include_flagged=True)))

    manifest = []
    root = Path(settings.EXPORT_ROOT)
    for label, export in exports:
        folder = root / export.path
        entries = export.dataset_info or {}
        names = data_files(export)
        fmts = export.format.split(",")
        for name in names:
            entry_name = next((k for k, e in entries.items() if e.get("file_name") == name), None)
            fmt = next((f for f in fmts if f in name), fmts[0])
            if label == "trainset":
                fmt = export.format
            rows = list(formats.iter_rows(folder / name))
            images = sum(len(r.get("images") or []) for r in rows)
            manifest.append({
                "export": f"{label}:{fmt}" + (f" ({name})" if len(names) > 1 else ""), "kind": export.kind,
                "format": fmt, "folder": str(folder), "file": name, "rows": len(rows), "images": images,
                "dataset_info_name": entry_name, "dataset_info": entries.get(entry_name) if entry_name else None,
                "consumers": CONSUMERS.get(fmt, []),
            })
    out = {"media_root": str(settings.MEDIA_ROOT), "exports": manifest}
    (workdir / "manifest.json").write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"{len(manifest)} export files from {len(exports)} exports -> {workdir / 'manifest.json'}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "var" / "compat"))
