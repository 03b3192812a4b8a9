"""`manage.py analysis_report --dataset NAME [--classes …] [--reviewer USER] [--output FILE]`:
分类分析.md for one reviewer's classes, as the seed asks each person to deliver (`####` class headings)."""
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.files import atomic_open

from review.exports import class_analysis_markdown, md_text
from review.importing import closest_class_names, resolve_class_name
from review.models import Assignment, Dataset

# The seed's example: "### 1、在模式2下…" above "#### 商品分类选项": classes are level-4 headings.
CLASS_HEADING_LEVEL = 4


class Command(BaseCommand):
    help = "Write 分类分析.md (the analysis of mode-2 errors, mode 2 vs 3, confusions) for some classes."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="dataset name")
        parser.add_argument("--classes", nargs="+", metavar="CLASS",
                            help="class names (shortened names work: 换货 → 换货页面); default: all classes")
        parser.add_argument("--reviewer", metavar="USER", help="the classes assigned to this reviewer")
        parser.add_argument("--output", metavar="FILE", help="write here (e.g. 分类分析.md) instead of standard output")

    def handle(self, *args, dataset, classes=None, reviewer=None, output=None, **options):
        dataset_obj = Dataset.objects.filter(name=dataset).first()
        if dataset_obj is None:
            names = ", ".join(Dataset.objects.values_list("name", flat=True)) or "（无）"
            raise CommandError(f"数据集 {dataset!r} 不存在；已有：{names}")
        categories = list(dataset_obj.categories.all())
        chosen = categories
        if reviewer:
            user = get_user_model().objects.filter(username=reviewer).first()
            if user is None:
                raise CommandError(f"用户 {reviewer!r} 不存在")
            assigned = set(Assignment.objects.filter(reviewer=user, category__dataset=dataset_obj)
                           .values_list("category_id", flat=True))
            if not assigned:
                raise CommandError(f"{reviewer} 在数据集 {dataset} 中没有被分配类别")
            chosen = [c for c in chosen if c.pk in assigned]
        if classes:
            by_name = {c.name: c for c in categories}
            wanted, unknown = [], []
            for name in classes:
                resolved = resolve_class_name(name, list(by_name))
                if resolved is None:
                    near = closest_class_names(name, list(by_name))
                    unknown.append(f"{name}" + (f"（最接近：{'、'.join(near)}）" if near else ""))
                else:
                    wanted.append(by_name[resolved].pk)
            if unknown:
                raise CommandError(f"没有这些类别：{'；'.join(unknown)}")
            chosen = [c for c in chosen if c.pk in wanted]
            if not chosen:
                raise CommandError("所选类别都不属于该审核员")
        chunks = self._document(dataset_obj, chosen, reviewer)
        if output:
            with atomic_open(Path(output)) as handle:  # a temporary name, renamed when complete
                for chunk in chunks:
                    handle.write(chunk)
            self.stderr.write(f"已写入 {output}（{len(chosen)} 个类别）")
        else:
            try:
                for chunk in chunks:
                    self.stdout.write(chunk, ending="")
                self.stdout.flush()
            except BrokenPipeError:  # `… | head`: the reader has what it wanted
                import os
                import sys

                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    def _document(self, dataset, categories, reviewer):
        yield f"# 分类分析 — {md_text(dataset.name)}\n\n"
        who = f"{md_text(reviewer)} 负责的" if reviewer else ""
        yield f"{who}类别（{len(categories)} 个）：{'、'.join(md_text(c.name) for c in categories)}\n\n"
        for category in categories:
            yield from class_analysis_markdown(category=category, level=CLASS_HEADING_LEVEL)
