"""`manage.py export_trainset --dataset NAME --format FORMAT --output FILE`, or
`manage.py export_trainset --dataset NAME --layout team --output DIR` (the team's own folders,
`review.team_layout`).

The export is recorded like a browser export (a folder under EXPORT_ROOT with its dataset_info.json);
FILE gets a copy, and the dataset_info.json beside FILE gets the export's entry (one name per dataset
and format, so several formats can share a folder). No eligible row is an error: exit status 1,
nothing written.
"""
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.files import atomic_open
from core.errors import ApplicationError
from review.exports import TRAINSET_FORMATS, report_markdown, trainset_error_markdown, trainset_export
from review.models import Dataset
from review.team_layout import team_layout_export


class Command(BaseCommand):
    help = "Export the corrected mode-3 training set of a dataset (and optionally trainset_error.md)."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="dataset name")
        parser.add_argument("--format", choices=sorted(TRAINSET_FORMATS), dest="fmt",
                            help="the file format (for --layout file)")
        parser.add_argument("--layout", choices=("file", "team"), default="file",
                            help="file: one training file in --format; team: the team's reasonbyQwen72b_model3/<class>/ "
                                 "files as they were imported, plus trainset_error.md, in the folder --output")
        parser.add_argument("--output", required=True, help="file to write (.json for alpaca/sharegpt, .jsonl); "
                            "dataset_info.json is written beside it. For --layout team: the folder")
        parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
        parser.add_argument("--errors-output", help="also write trainset_error.md (label errors by class) here")
        parser.add_argument("--user", help="record the export under this username")

    def handle(self, *args, dataset, fmt=None, output, layout="file", errors_output=None, user=None, overwrite=False,
               **options):
        if layout == "file" and not fmt:
            raise CommandError("--format is required (alpaca, jsonl or sharegpt), or use --layout team")
        try:
            dataset_obj = Dataset.objects.get(name=dataset)
        except Dataset.DoesNotExist:
            names = ", ".join(Dataset.objects.values_list("name", flat=True)) or "（无）"
            raise CommandError(f"数据集 {dataset!r} 不存在；已有：{names}") from None
        user_obj = None
        if user:
            user_obj = get_user_model().objects.filter(username=user).first()
            if user_obj is None:
                raise CommandError(f"用户 {user!r} 不存在")
        try:
            # The command line is trusted (server access), so the export is recorded without a user check.
            if layout == "team":
                export = team_layout_export(dataset=dataset_obj, directory=Path(output))
            else:
                export = trainset_export(dataset=dataset_obj, fmt=fmt, path=Path(output), overwrite=overwrite)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if user_obj is not None:
            export.created_by = user_obj
            export.save(update_fields=["created_by"])
        if errors_output:
            with atomic_open(errors_output) as fh:
                for chunk in trainset_error_markdown(dataset=dataset_obj):
                    fh.write(chunk)
        self.stdout.write(report_markdown(export))
        if layout == "team":
            files = export.report.get("files", [])
            self.stdout.write(self.style.SUCCESS(f"wrote {export.row_count} rows in {len(files)} files to {output}"))
        else:
            self.stdout.write(self.style.SUCCESS(f"wrote {export.row_count} rows to {output}"))
        return None
