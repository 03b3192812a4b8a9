"""`manage.py export_trainset --dataset NAME --format {alpaca,jsonl,sharegpt} --output FILE`."""
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from review.errors import ApplicationError
from review.exports import TRAINSET_FORMATS, report_markdown, trainset_error_markdown, trainset_export
from review.models import Dataset


class Command(BaseCommand):
    help = "Export the corrected mode-3 training set of a dataset (and optionally trainset_error.md)."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="dataset name")
        parser.add_argument("--format", required=True, choices=sorted(TRAINSET_FORMATS), dest="fmt")
        parser.add_argument("--output", required=True, help="file to write (.json for alpaca/sharegpt, .jsonl)")
        parser.add_argument("--errors-output", help="also write trainset_error.md (label errors by class) here")
        parser.add_argument("--user", help="record the export under this username")

    def handle(self, *args, dataset, fmt, output, errors_output=None, user=None, **options):
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
            export = trainset_export(dataset=dataset_obj, fmt=fmt, path=Path(output))
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if user_obj is not None:
            export.created_by = user_obj
            export.save(update_fields=["created_by"])
        if errors_output:
            with open(errors_output, "w", encoding="utf-8", newline="\n") as fh:
                for chunk in trainset_error_markdown(dataset=dataset_obj):
                    fh.write(chunk)
        self.stdout.write(report_markdown(export))
        self.stdout.write(self.style.SUCCESS(f"wrote {export.row_count} rows to {output}"))
        return None
