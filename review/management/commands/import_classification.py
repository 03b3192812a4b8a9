"""`manage.py import_classification PATH --dataset NAME`: import a manifest or the mode folders."""
from django.core.management.base import BaseCommand, CommandError

from review.errors import ApplicationError
from review.importers import import_classification


class Command(BaseCommand):
    help = "Import scene-classification samples and mode 1/2/3 reasoning (JSONL manifest or mode folders)."

    def add_arguments(self, parser):
        parser.add_argument("path", help="a .jsonl manifest, or a folder with *.jsonl and/or reasonbyQwen72b_model{1,2,3}/")
        parser.add_argument("--dataset", required=True, help="dataset name (created if missing)")

    def handle(self, *args, path, dataset, **options):
        try:
            report = import_classification(path=path, dataset_name=dataset)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        lines = report.summary_lines()
        self.stdout.write(self.style.SUCCESS(lines[0]))
        for line in lines[1:]:
            self.stdout.write(line)
