"""`python manage.py run_info_extraction --dataset NAME [--category NAME …] [--overwrite] [--wait]`."""
from django.core.management.base import BaseCommand

from pipelines.jobs.cli import add_job_arguments, engine_params, start_job
from pipelines.models import JobKind


class Command(BaseCommand):
    help = "Extract a structured description (visible text, objects, screen elements) of each sample's image."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--category", action="append", default=[])
        parser.add_argument("--overwrite", action="store_true", help="also samples that already have image info")
        add_job_arguments(parser)

    def handle(self, *args, **opts):
        params = {"dataset": opts["dataset"], "categories": opts["category"], "overwrite": opts["overwrite"],
                  **engine_params(opts)}
        start_job(self, kind=JobKind.INFO_EXTRACTION, params=params, opts=opts)
