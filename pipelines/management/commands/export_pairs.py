"""`manage.py export_pairs --job N --format FORMAT --output FILE` — a DPO job's pairs, from the shell.

The same export as the job page's button (`pipelines.dpo.services.pairs_export`): discarded pairs never,
flagged pairs that nobody reviewed only with --include-flagged. The export is recorded in a new
folder under EXPORT_ROOT; FILE gets a copy, and the dataset_info.json beside it the export's entry.
`--format prompt_chosen_reject` writes the layout the team's own DPO trainer reads
({"prompt", "chosen", "reject"}); `trl_preference` is TRL's ({"prompt", "chosen", "rejected"}).
Nothing to export is an error (exit status 1), and nothing is written.
"""
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from pipelines.datasets.exports import deliver
from pipelines.dpo.services import EXPORT_FORMATS, pairs_export
from pipelines.models import Job, JobKind
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Export a DPO job's preference pairs to a training file (TRL, LLaMA-Factory or prompt/chosen/reject)."

    def add_arguments(self, parser):
        parser.add_argument("--job", type=int, required=True, help="DPO job id")
        parser.add_argument("--format", required=True, choices=list(EXPORT_FORMATS), dest="fmt")
        parser.add_argument("--output", required=True, help="file to write (.jsonl for TRL formats, .json otherwise)")
        parser.add_argument("--include-flagged", action="store_true", help="also export flagged pairs nobody reviewed")
        parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
        parser.add_argument("--user", help="record the export under this username")

    def handle(self, *args, job, fmt, output, include_flagged=False, overwrite=False, user=None, **options):
        job_obj = Job.objects.filter(pk=job, kind=JobKind.DPO).first()
        if job_obj is None:
            raise CommandError(f"DPO 任务 #{job} 不存在")
        user_obj = None
        if user:
            user_obj = get_user_model().objects.filter(username=user).first()
            if user_obj is None:
                raise CommandError(f"用户 {user!r} 不存在")
        output = Path(output)
        if output.exists() and not overwrite:
            raise CommandError(f"已存在，未覆盖：{output}（换一个 --output 或加 --overwrite）")
        try:
            export = pairs_export(job=job_obj, fmt=fmt, user=user_obj, include_flagged=include_flagged,
                                      file_name=output.name)
            deliver(export, output, overwrite=overwrite)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        counts = export.report.get("pairs", {})
        self.stdout.write(f"导出 #{export.pk}：EXPORT_ROOT/{export.path}")
        self.stdout.write(f"丢弃 {counts.get('discarded', 0)} 条，未审核且有问题 {counts.get('flagged_pending', 0)} 条未导出")
        self.stdout.write(self.style.SUCCESS(f"wrote {export.row_count} pairs to {output}"))
