"""`python manage.py run_dpo --source feedback --strategy model --model sft-small --template '{prompt}[EOS]' --preview 3`."""
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pipelines.dpo import checks
from pipelines.dpo.pairs import preview
from pipelines.dpo.params import DEFAULT_TEMPLATE, STRATEGIES
from pipelines.dpo.selectors import job_report
from pipelines.dpo.services import prompt_file_import
from pipelines.dpo.sources import read_import, source_labels
from pipelines.models import JobKind, PreferencePair
from core.errors import ApplicationError

from pipelines.jobs.cli import add_job_arguments, start_job


class Command(BaseCommand):
    help = (
        "Build DPO preference pairs: rejects from a model (any OpenAI-compatible endpoint) or a model-free "
        "degradation of the chosen answer; every pair checked. Use --preview N first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source", required=True, choices=list(source_labels()))
        parser.add_argument("--file", help="JSONL of prompt/chosen (or instruction/input/output) for --source file")
        parser.add_argument("--dataset", help="dataset name for --source classification")
        parser.add_argument("--source-job", type=int, help="only rows made by this job (feedback, generation, logs)")
        parser.add_argument("--source-model", help="only rows answered by this model (feedback, logs)")
        parser.add_argument("--strategy", required=True, choices=list(STRATEGIES))
        parser.add_argument("--base-url", help="OpenAI-compatible endpoint (default: OPENAI_BASE_URL)")
        parser.add_argument("--template", help=f"prompt template with {{prompt}} (default: {DEFAULT_TEMPLATE})")
        parser.add_argument("--system", help="system message")
        parser.add_argument("--sampling", action="store_true", help="sample (temperature/top-p) instead of greedy")
        parser.add_argument("--top-p", type=float)
        parser.add_argument("-n", type=int, default=1, help="candidates per prompt (sampling only); one row each")
        parser.add_argument("--keep", type=float, help="share of the chosen answer kept by --strategy truncate")
        parser.add_argument("--limit", type=int, help="at most this many prompts")
        parser.add_argument("--preview", type=int, metavar="N", help="only show the first N pairs; write nothing")
        add_job_arguments(parser)

    def handle(self, *args, **opts):
        source = {"name": opts["source"]}
        if opts.get("file"):
            source["path"] = self._import(opts["file"])
        for option, key in (("dataset", "dataset"), ("source_job", "job_id"), ("source_model", "model_name")):
            if opts.get(option) is not None:
                source[key] = opts[option]
        strategy = {"name": opts["strategy"], "mode": "sampling" if opts["sampling"] else "greedy", "n": opts["n"]}
        for option in ("base_url", "model", "template", "system", "temperature", "top_p", "max_tokens", "keep"):
            if opts.get(option) is not None:
                strategy[option] = opts[option]
        params = {"source": source, "strategy": strategy, "limit": opts.get("limit")}
        for option in ("concurrency", "requests_per_minute"):
            if opts.get(option) is not None:
                params[option] = opts[option]
        if opts.get("preview"):
            try:
                shown = preview(params, n=opts["preview"])
            except ApplicationError as exc:
                raise CommandError(exc.message) from None
            self._print_preview(shown)
            return
        job = start_job(self, kind=JobKind.DPO, params=params, opts=opts)
        if not job.is_active:
            report = job_report(job)
            self.stdout.write(checks.format_report(report))
            self.stdout.write(f"{PreferencePair.objects.filter(job=job).count()} pairs → /dpo/jobs/{job.pk}/")

    def _import(self, file: str) -> str:
        """Copy the file under MEDIA_ROOT (jobs read imports only from there)."""
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        relative = prompt_file_import(path=path)
        for line_no, reason in read_import(relative)[1]:
            self.stderr.write(f"{path}:{line_no}: {reason}")
        return relative

    def _print_preview(self, shown: dict) -> None:
        context = shown["context"]
        self.stdout.write(f"source: {context['source_label']}  strategy: {context['strategy_label']}")
        if context.get("endpoint"):
            self.stdout.write(f"endpoint: {context['endpoint']}  model: {context['model']}  mode: {context['mode']}")
            self.stdout.write(f"template: {context['template']!r}")
            for message in context.get("example_messages", []):
                self.stdout.write(f"first request, {message['role']}: {message['content']!r}")
        for number, pair in enumerate(shown["pairs"]):
            self.stdout.write(f"\n=== {number} {pair['key']} {pair['issues'] or ''}")
            for side in ("prompt", "chosen", "rejected"):
                self.stdout.write(f"{side}: {pair[side]}")
        for failure in shown["failures"]:
            self.stderr.write(f"{failure['key']}: {failure['kind']} {failure['message']}")
        self.stdout.write("")
        self.stdout.write(checks.format_report(shown["report"]))
        self.stdout.write("\n" + json.dumps({"preview_pairs": len(shown["pairs"])}))
