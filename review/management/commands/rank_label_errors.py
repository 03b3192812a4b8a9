"""`manage.py rank_label_errors --dataset NAME [--top K] [--category NAME …] [--scores]`: the samples whose
dataset label is most likely wrong, one id (as imported) per line, most suspect first."""
from django.core.management.base import BaseCommand, CommandError

from review.importing import closest_class_names, resolve_class_name
from review.models import Dataset, Sample
from review.suspicion import ranked_samples, threshold


class Command(BaseCommand):
    help = ("Rank samples by the suspicion that their dataset label is wrong (review/suspicion.py) and print "
            "their ids, most suspect first: the suspected ones (score ≥ LABEL_SUSPICION_THRESHOLD), or with "
            "--top K the K highest-scoring ones.")

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="dataset name")
        parser.add_argument("--top", type=int, metavar="K",
                            help="the K most suspect samples (any score above 0) instead of the suspected ones")
        parser.add_argument("--category", action="append", default=[], metavar="CLASS",
                            help="only samples labelled with this class (repeatable; shortened names work)")
        parser.add_argument("--scores", action="store_true",
                            help="also print the score and the class the evidence points to (tab-separated)")

    def handle(self, *args, dataset, top=None, category=(), scores=False, **options):
        dataset_obj = Dataset.objects.filter(name=dataset).first()
        if dataset_obj is None:
            names = ", ".join(Dataset.objects.values_list("name", flat=True)) or "（无）"
            raise CommandError(f"数据集 {dataset!r} 不存在；已有：{names}")
        if top is not None and top < 1:
            raise CommandError("--top 必须是正整数")
        samples = Sample.objects.filter(dataset=dataset_obj)
        if category:
            known = list(dataset_obj.categories.values_list("name", flat=True))
            wanted = []
            for name in category:
                resolved = resolve_class_name(name, known)
                if resolved is None:
                    near = "、".join(closest_class_names(name, known)) or "无"
                    raise CommandError(f"数据集 {dataset} 中没有类别 {name!r}（相近的：{near}）")
                wanted.append(resolved)
            samples = samples.filter(label__name__in=wanted)
        ranked = ranked_samples(samples=samples, refresh=True)
        if top is None:
            ranked = ranked.filter(label_suspicion__gte=threshold())
        else:
            ranked = ranked[:top]
        for external_id, score, suggested in ranked.values_list("external_id", "suspicion_score", "suggested_name"):
            self.stdout.write(f"{external_id}\t{score:.2f}\t{suggested or ''}" if scores else external_id)
