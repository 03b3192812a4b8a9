"""The floor `bench_import` compares `import_classification` with: a bare script doing the least an
import of the same folder must do.

It reads every file of a team folder with `json.load` (mode folders, `info_ectra` lines, `train.json`),
joins the records by id in dictionaries, inserts the same rows — one sample per id with its label,
image path, description and provenance, one reasoning per mode with its output and length — with the
database driver's `executemany` (sqlite3 or psycopg, no ORM) in one transaction, and copies each
image with `shutil.copyfile`. No checks, no parsing of the answers, no counters, no recovery.

    python -m bench.import_floor ROOT IMAGE_ROOT MEDIA_DIR DATASET_NAME

Run by `bench_import` as a child process with the bench database's DATABASE_URL; prints the number
of samples and reasonings it inserted.
"""
import json
import os
import shutil
import sys
from pathlib import Path, PureWindowsPath

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")


def _read(path: Path) -> list:
    text = path.read_text(encoding="utf-8")
    stripped = text.strip()
    if stripped.startswith("["):
        return json.loads(stripped)
    return [json.loads(line.rstrip().rstrip(",")) for line in text.splitlines() if line.strip()]


def read_folder(root: Path) -> tuple[dict, dict]:
    """(id → sample fields, id → {mode: output}) from a team folder."""
    samples: dict[str, dict] = {}
    outputs: dict[str, dict] = {}
    for record in _read(root / "train.json"):
        samples[record["id"]] = {"label": record["output"], "image": (record.get("image") or [""])[0],
                                 "description": "", "provenance": {}}
    for info in sorted((root / "info_ectra").glob("*.json")):
        for record in _read(info):
            samples[record["id"]]["description"] = record.get("picture2text", "")
    for mode in (1, 2, 3):
        for path in sorted((root / f"reasonbyQwen72b_model{mode}").rglob("*.json")):
            for position, record in enumerate(_read(path)):
                outputs.setdefault(record["id"], {})[mode] = record["output"]
                samples[record["id"]]["provenance"][f"mode{mode}"] = {
                    "file": path.relative_to(root).as_posix(), "position": position,
                    "record": json.dumps({**record, "output": None}, ensure_ascii=False)}
    return samples, outputs


def _columns(model, given: dict) -> tuple[list[str], list]:
    """Every column of `model` but its id: the given values' columns, then the others' defaults
    (computed once, the same for every row)."""
    from django.db import connection
    from django.utils import timezone

    now = timezone.now()
    names, defaults = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.name in given:
            continue
        value = now if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False) else field.get_default()
        names.append(field.column)
        defaults.append(field.get_db_prep_save(value, connection))
    return [model._meta.get_field(name).column for name in given] + names, defaults


def insert_rows(samples: dict, outputs: dict, dataset_name: str, media: Path, image_root: Path | None) -> tuple[int, int]:
    from django.db import connection

    from review.models import Category, Dataset, Reasoning, Sample

    dataset, _ = Dataset.objects.get_or_create(name=dataset_name)
    labels = {}
    for position, name in enumerate(dict.fromkeys(s["label"] for s in samples.values())):
        labels[name] = Category.objects.get_or_create(dataset=dataset, name=name, defaults={"position": position})[0].pk
    if image_root is not None:
        media.mkdir(parents=True, exist_ok=True)
    connection.ensure_connection()
    raw = connection.connection
    quote = connection.ops.quote_name
    cursor = raw.cursor()
    cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {quote(Sample._meta.db_table)}")
    next_id = cursor.fetchone()[0] + 1
    sqlite = connection.vendor == "sqlite"
    placeholder = "?" if sqlite else "%s"
    if sqlite:
        def as_json(value):
            return json.dumps(value, ensure_ascii=False)
    else:
        from psycopg.types.json import Jsonb as as_json

    sample_given = {"id": None, "dataset": None, "external_id": None, "label": None, "image": None,
                    "description": None, "provenance": None}
    sample_columns, sample_defaults = _columns(Sample, sample_given)
    reasoning_given = {"sample": None, "mode": None, "output": None, "length": None}
    reasoning_columns, reasoning_defaults = _columns(Reasoning, reasoning_given)

    sample_rows, reasoning_rows = [], []
    for external_id, fields in samples.items():
        image = ""
        if image_root is not None and fields["image"]:
            name = PureWindowsPath(fields["image"]).name
            image = f"floor/{name}"
            shutil.copyfile(image_root / "images" / name, media / name)
        sample_rows.append((next_id, dataset.pk, external_id, labels[fields["label"]], image, fields["description"],
                            as_json(fields["provenance"]), *sample_defaults))
        for mode, text in sorted(outputs.get(external_id, {}).items()):
            reasoning_rows.append((next_id, mode, text, len(text), *reasoning_defaults))
        next_id += 1

    def sql(model, columns):
        marks = ", ".join([placeholder] * len(columns))
        return f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) VALUES ({marks})"

    if sqlite:
        cursor.execute("BEGIN")
        cursor.executemany(sql(Sample, sample_columns), sample_rows)
        cursor.executemany(sql(Reasoning, reasoning_columns), reasoning_rows)
        cursor.execute("COMMIT")
    else:
        with raw.transaction():
            cursor.executemany(sql(Sample, sample_columns), sample_rows)
            cursor.executemany(sql(Reasoning, reasoning_columns), reasoning_rows)
    return len(sample_rows), len(reasoning_rows)


def main(argv: list[str]) -> int:
    import django

    django.setup()
    root, image_root, media, dataset_name = Path(argv[0]), argv[1], Path(argv[2]), argv[3]
    samples, outputs = read_folder(root)
    inserted = insert_rows(samples, outputs, dataset_name, media, Path(image_root) if image_root != "-" else None)
    print(f"{inserted[0]} samples, {inserted[1]} reasonings")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
