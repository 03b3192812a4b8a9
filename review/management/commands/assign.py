"""`manage.py assign REVIEWER CATEGORY… --dataset NAME`: give a reviewer classes to review."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from review.models import Dataset
from review.parsing import match_category_name
from review.services import assignments_add


class Command(BaseCommand):
    help = "Assign categories of a dataset to a reviewer (adds to their existing assignments)."

    def add_arguments(self, parser):
        parser.add_argument("reviewer", help="username")
        parser.add_argument("categories", nargs="+", help="category names (shortened names are matched)")
        parser.add_argument("--dataset", required=True)

    def handle(self, *args, reviewer, categories, dataset, **options):
        user = get_user_model().objects.filter(username=reviewer).first()
        if user is None:
            raise CommandError(f"没有用户 {reviewer}")
        ds = Dataset.objects.filter(name=dataset).first()
        if ds is None:
            raise CommandError(f"没有数据集 {dataset}")
        by_name = {c.name: c for c in ds.categories.all()}
        chosen = []
        for name in categories:
            found = by_name.get(name) or by_name.get(match_category_name(name, list(by_name)) or "")
            if found is None:
                raise CommandError(f"数据集 {dataset} 中没有类别 {name}")
            chosen.append(found)
        added = assignments_add(reviewer=user, categories=chosen, assigned_by=None)
        self.stdout.write(self.style.SUCCESS(f"{reviewer}：新分配 {added} 个类别（{'、'.join(c.name for c in chosen)}）"))
