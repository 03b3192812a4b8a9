"""`manage.py import_classification PATH --dataset NAME`: the team's folders or a JSONL manifest."""
import sys

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from review.importing import import_classification


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
        parser.add_argument("--no-progress", action="store_true",
                            help="no progress bars (they are shown on a terminal: reading the files, then saving)")

    def handle(self, *args, path, dataset, image_root=None, path_prefix=(), encoding=None, create_classes=False,
               prompt_file=None, no_progress=False, **options):
        bars = ProgressBars(disable=True if no_progress else None)
        try:
            report = import_classification(
                path=path, dataset_name=dataset, image_root=image_root, path_prefixes=path_prefix,
                encoding=encoding, create_classes=create_classes, prompt_file=prompt_file, progress=bars.update,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        finally:
            bars.close()
        lines = report.summary_lines()
        self.stdout.write(self.style.SUCCESS(lines[0]) if report.samples_imported else lines[0])
        for line in lines[1:]:
            self.stdout.write(line)
        if not report.samples_imported:
            raise CommandError("没有导入任何样本（原因见上面列出的问题）")


class ProgressBars:
    """tqdm bars on stderr, one per phase of the import: reading the files (bytes), saving (samples).
    `disable=None` shows them only on a terminal."""

    LABELS = {"read": ("读取文件", "B", True), "save": ("保存样本", "个", False)}

    def __init__(self, *, disable: bool | None):
        self.disable = disable
        self.bar = None
        self.phase = ""

    def update(self, progress) -> None:
        from tqdm import tqdm

        if progress.phase != self.phase:
            self.close()
            label, unit, scale = self.LABELS[progress.phase]
            self.bar = tqdm(total=progress.total, desc=label, unit=unit, unit_scale=scale, file=sys.stderr,
                            disable=self.disable, dynamic_ncols=True)
            self.phase = progress.phase
        self.bar.update(progress.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
