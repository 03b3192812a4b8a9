"""`python manage.py import_info_extra --dataset NAME FILE_OR_DIR …` — the team's info_extra JSON files."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from review.jobs.classification import resolve_dataset
from review.jobs.info_extraction import info_extra_import


class Command(BaseCommand):
    help = "Import existing image descriptions (info_extra/*.json) into the samples' image info."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True)
        parser.add_argument("paths", nargs="+", help="JSON files or directories of them")
        parser.add_argument("--encoding", metavar="ENC", help="encoding of lines that are not UTF-8, e.g. gbk")

    def handle(self, *args, **opts):
        try:
            dataset = resolve_dataset(opts["dataset"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        files = []
        for raw in opts["paths"]:
            path = Path(raw)
            if path.is_dir():
                files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in (".json", ".jsonl")))
            elif path.is_file():
                files.append(path)
            else:
                raise CommandError(f"not found: {raw}")
        result = info_extra_import(dataset=dataset, paths=files, encoding=opts.get("encoding"))
        for error in result.errors:
            self.stderr.write(error)
        if result.unknown_ids:
            shown = "、".join(result.unknown_ids[:10])
            self.stderr.write(f"{len(result.unknown_ids)} 条记录没有对应的样本：{shown}{' …' if len(result.unknown_ids) > 10 else ''}")
        self.stdout.write(f"{result.files} 个文件：更新 {result.updated} 个样本，未变 {result.unchanged}，"
                          f"错误 {len(result.errors)}，未知 id {len(result.unknown_ids)}")
        if not result.updated and not result.unchanged:
            raise CommandError("没有导入任何样本的信息（见上面的错误和未知 id）")
