"""`manage.py import_classification PATH --dataset NAME`: the team's folders or a JSONL manifest."""
from django.core.management.base import BaseCommand, CommandError

from review.errors import ApplicationError
from review.importers import import_classification


def path_prefix(value: str) -> tuple[str, str]:
    old, sep, new = value.partition("=")
    if not sep or not old.strip() or not new.strip():
        raise ValueError(value)
    return old.strip(), new.strip()


path_prefix.__name__ = "OLD=NEW"  # argparse names the expected form in its error


class Command(BaseCommand):
    help = ("Import scene-classification samples and mode 1/2/3 reasoning: the team's train/ folder "
            "(reasonbyQwen72b_model1/2/3, info_ectra, train.json) or a JSONL manifest.")

    def add_arguments(self, parser):
        parser.add_argument("path", help="the team's train/ folder, one reasonbyQwen72b_modelN folder, or a .jsonl manifest")
        parser.add_argument("--dataset", required=True, help="dataset name (created if missing)")
        parser.add_argument("--image-root", metavar="DIR",
                            help="where the images are on this machine; absolute paths from another machine "
                                 "(E:\\…\\images\\x.jpg, /data/…) are looked up here by their last folders and file name")
        parser.add_argument("--path-prefix", metavar="OLD=NEW", action="append", type=path_prefix, default=[],
                            help="replace the path prefix OLD of image paths by the local folder NEW (repeatable)")
        parser.add_argument("--encoding", metavar="ENC",
                            help="encoding of files (or lines) that are not UTF-8, e.g. gbk; UTF-8 files read as before")
        parser.add_argument("--create-classes", action="store_true",
                            help="create the classes the files name that the dataset does not have yet")
        parser.add_argument("--prompt-file", metavar="FILE",
                            help="the team's mode-3 prompt, recorded with the dataset and used as the exported instruction")

    def handle(self, *args, path, dataset, image_root=None, path_prefix=(), encoding=None, create_classes=False,
               prompt_file=None, **options):
        try:
            report = import_classification(
                path=path, dataset_name=dataset, image_root=image_root, path_prefixes=path_prefix,
                encoding=encoding, create_classes=create_classes, prompt_file=prompt_file,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        lines = report.summary_lines()
        self.stdout.write(self.style.SUCCESS(lines[0]) if report.samples_imported else lines[0])
        for line in lines[1:]:
            self.stdout.write(line)
        if not report.samples_imported:
            raise CommandError("没有导入任何样本（原因见上面列出的问题）")
