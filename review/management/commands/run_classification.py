"""`python manage.py run_classification --dataset NAME --mode {1,2,3} [--category NAME …] [--wait]`."""
from django.core.management.base import BaseCommand

from pipelines.jobs.cli import add_job_arguments, engine_params, start_job
from pipelines.models import JobKind


class Command(BaseCommand):
    help = "Run classification reasoning (mode 1/2/3) over a dataset or some of its categories."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="dataset name")
        parser.add_argument("--mode", type=int, choices=[1, 2, 3], required=True)
        parser.add_argument("--category", action="append", default=[], help="a category name (repeatable)")
        parser.add_argument("--prompt-version", type=int, help="prompt template version (default: newest)")
        parser.add_argument("--logprobs", action="store_true",
                            help="ask for token log-probabilities (if the server supports them): they weigh "
                                 "each answer in the label-error ranking")
        add_job_arguments(parser)

    def handle(self, *args, **opts):
        params = {"dataset": opts["dataset"], "mode": opts["mode"], "categories": opts["category"],
                  "logprobs": opts["logprobs"], **engine_params(opts)}
        if opts.get("prompt_version"):
            from pipelines.models import PromptTemplate
            from pipelines.jobs.prompts import MODE_KINDS

            template = PromptTemplate.objects.filter(kind=MODE_KINDS[opts["mode"]], version=opts["prompt_version"]).first()
            if template is None:
                from django.core.management.base import CommandError

                raise CommandError(f"mode {opts['mode']} has no prompt version {opts['prompt_version']}")
            params["prompt_template_id"] = template.pk
        start_job(self, kind=JobKind.CLASSIFICATION, params=params, opts=opts)
