"""Print the failure analysis of a generation output directory (what analyze_failures.py printed)."""
import json

from django.core.management.base import BaseCommand, CommandError

from pipelines.generation.analysis import analyze, format_report, load_run_dir


class Command(BaseCommand):
    help = "Analyse generated_examples.jsonl / failed_examples.jsonl in DIR: reasons, scores, success vs failure."

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--json", action="store_true", help="print the numbers as JSON instead")

    def handle(self, *args, **options):
        try:
            passed, failed, report = load_run_dir(options["directory"])
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        errors = (report.get("pipeline_stats") or {}).get("generation_errors", 0)
        analysis = analyze(passed, failed, generation_errors=errors)
        if options["json"]:
            self.stdout.write(json.dumps(analysis, ensure_ascii=False, indent=2))
        else:
            self.stdout.write(format_report(analysis))
