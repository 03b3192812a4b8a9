"""Import generation source items (image + wiki title + optional facts) from JSON or JSONL."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pipelines.generation.services import source_items_import
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Import source items like the team's data_clean.json (JSON array or JSONL); bad records are reported by line."

    def add_arguments(self, parser):
        parser.add_argument("path", help="JSON array or JSONL file")
        parser.add_argument("--collection", help="name of the source set (default: the file name)")
        parser.add_argument("--sample", type=int, help="import a reproducible sample of N records")
        parser.add_argument("--seed", type=int, default=42, help="seed of the sample (default 42)")

    def handle(self, *args, **options):
        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"文件不存在: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} 不是 UTF-8 文本: {exc}") from None
        collection = options["collection"] or path.name
        try:
            report = source_items_import(text=text, collection=collection, sample=options["sample"], seed=options["seed"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        for problem in report.problems:
            self.stderr.write(f"{path}:{problem.line}: {problem.message}")
        self.stdout.write(
            f"集合 {collection}: 新增 {report.created}，更新 {report.updated}，问题 {len(report.problems)} 行"
        )
        if not report.created and not report.updated:
            raise CommandError("没有导入任何来源记录（原因见上面列出的问题）")
