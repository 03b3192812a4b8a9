"""Export rows become folders relative to EXPORT_ROOT with their file list and dataset_info entries.

Older rows stored an absolute or relative file or folder path; the data migration turns each into
(folder relative to EXPORT_ROOT, [file names]) where it can. A row pointing outside EXPORT_ROOT keeps
its path and lists no files, so it is never served.
"""
import json
from pathlib import Path

from django.conf import settings
from django.db import migrations, models


def _folder_and_files(stored: str, root: Path):
    if not stored:
        return stored, []
    candidate = Path(stored)
    candidate = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not candidate.is_relative_to(root):
        return stored, []
    folder = candidate if candidate.is_dir() or not candidate.suffix else candidate.parent
    names = sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if candidate != folder:  # a file export sharing its folder with others: list only what is its own
        names = [n for n in names if n in {candidate.name, "dataset_info.json"}
                 or n.startswith(candidate.stem + "_")]
    return str(folder.relative_to(root)), names


def forwards(apps, schema_editor):
    Export = apps.get_model("pipelines", "Export")
    root = Path(settings.EXPORT_ROOT).resolve()
    for export in Export.objects.all().iterator():
        export.path, export.files = _folder_and_files(export.path, root)
        info = (export.report or {}).get("dataset_info")
        if isinstance(info, dict):
            export.dataset_info = info
        elif "dataset_info.json" in export.files:
            try:
                export.dataset_info = json.loads((root / export.path / "dataset_info.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                pass
        export.save(update_fields=["path", "files", "dataset_info"])


class Migration(migrations.Migration):

    dependencies = [
        ("pipelines", "0004_jobs_enqueued_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="export", name="files",
            field=models.JSONField(blank=True, default=list, help_text="Names of the files in the folder."),
        ),
        migrations.AddField(
            model_name="export", name="dataset_info",
            field=models.JSONField(blank=True, default=dict, help_text="The folder's dataset_info.json entries."),
        ),
        migrations.AlterField(
            model_name="export", name="path",
            field=models.CharField(blank=True, help_text="The export's folder, relative to EXPORT_ROOT.", max_length=500),
        ),
        migrations.AlterField(model_name="export", name="format", field=models.CharField(max_length=64)),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
