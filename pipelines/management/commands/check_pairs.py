"""Check an existing DPO pair file for the seed's failures: `manage.py check_pairs FILE.jsonl --output REPORT.jsonl`."""
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pipelines.dpo import checks


class Command(BaseCommand):
    help = (
        "Run the DPO pair checks (identical, off_topic, echo, boilerplate, empty, truncated, likely_swapped) on a "
        "JSONL (or JSON array) file of prompt/chosen/rejected or instruction/input/chosen/rejected records."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="pair file: JSON lines, or a JSON array as LLaMA-Factory reads it")
        parser.add_argument("--output", required=True, help="where to write one JSON line per pair")
        parser.add_argument("--metrics", action="store_true", help="also write the measured numbers of each pair")

    def handle(self, *args, **options):
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        lines, errors = checks.load_pair_file(path)
        for line in errors:
            self.stderr.write(f"{path}:{line.line_no}: {line.error}")
        results, clusters = checks.check_pairs([line.pair for line in lines])
        output = Path(options["output"])
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("w", encoding="utf-8") as out:
            for line, result in zip(lines, results):
                row = {"id": line.id, "issues": result.issues}
                if options["metrics"]:
                    row["metrics"] = result.metrics
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        report = checks.batch_report([r.issues for r in results], clusters)
        self.stdout.write(checks.format_report(report, malformed=len(errors)))
