"""`python manage.py draft_corrections --dataset NAME [--category NAME …] [--examples 2|3] [--redraft] [--wait|--inline]`."""
from django.core.management.base import BaseCommand

from pipelines.jobs.cli import add_job_arguments, engine_params, start_job
from pipelines.models import JobKind


class Command(BaseCommand):
    help = ("Draft a corrected mode-3 output for every sample whose mode-3 output is wrong or over "
            "TRAINSET_MAX_LENGTH (suggestions shown on the sample page; nothing enters the training set "
            "until a reviewer saves it).")

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--category", action="append", default=[], help="only this class (repeatable)")
        parser.add_argument("--examples", type=int, choices=(2, 3), default=3,
                            help="correct outputs of the same class shown to the model as examples")
        parser.add_argument("--redraft", action="store_true",
                            help="also samples that already have a draft waiting for their reviewer")
        add_job_arguments(parser)

    def handle(self, *args, **opts):
        params = {"dataset": opts["dataset"], "categories": opts["category"], "examples": opts["examples"],
                  "redraft": opts["redraft"], **engine_params(opts)}
        start_job(self, kind=JobKind.CORRECTION_DRAFT, params=params, opts=opts)
