"""`manage.py import_feedback --feedback-file F …` — the team's generate_training_data_from_feedback.

    python manage.py import_feedback --feedback-file F --output-dir DIR --min-rating 4 \
        --format json jsonl alpaca --model-name NAME

Writes the seed's outputs (json/jsonl with every field, alpaca with instruction/input/output) and
imports the samples into FeedbackSample rows as a "feedback_import" job, so reviewers can check
them on /feedback/ (`--no-import` skips the import).
"""
import argparse

from django.core.management.base import BaseCommand, CommandError

from pipelines.datasets.feedback import DEFAULT_MIN_RATING, OUTPUT_FORMATS, read_feedback_file, write_feedback_outputs
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Generate training data from user feedback ratings (and import the samples for review)."

    def add_arguments(self, parser):
        parser.add_argument("--feedback-file", required=True, help="反馈数据文件路径（JSON 或 JSONL）")
        parser.add_argument("--output-dir", default="data/training_samples", help="输出目录（默认 data/training_samples）")
        parser.add_argument("--min-rating", type=int, default=DEFAULT_MIN_RATING, choices=range(1, 6),
                            metavar="{1-5}", help="最低评分阈值（默认 4）")
        parser.add_argument("--format", nargs="+", default=list(OUTPUT_FORMATS), choices=OUTPUT_FORMATS,
                            dest="formats", help="输出格式（默认 json jsonl alpaca）")
        parser.add_argument("--model-name", help="只提取该模型的反馈")
        parser.add_argument("--import", action=argparse.BooleanOptionalAction, default=True, dest="do_import",
                            help="同时作为任务导入 FeedbackSample 表（默认是）")

    def handle(self, *args, feedback_file, output_dir, min_rating, formats, model_name=None, do_import=True, **kw):
        try:
            entries, report = read_feedback_file(feedback_file, min_rating=min_rating, model_name=model_name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"读取 {report['entries']} 条反馈，保留 {report['kept']} 条（评分 ≥ {min_rating}"
                          + (f"，模型 {model_name}" if model_name else "") + "）")
        for reason, count in report["dropped"].items():
            self.stdout.write(f"  丢弃 {reason}: {count}")
        for problem in report["problems"][:20]:
            self.stdout.write(f"  {problem['file']}:{problem['line']} {problem['reason']} {problem['detail']}")
        if not entries:
            raise CommandError("没有可用的反馈样本，什么也没有写入或导入（原因见上面的统计和问题）")
        try:
            written = write_feedback_outputs(entries, output_dir, tuple(dict.fromkeys(formats)))
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        for fmt, path in written.items():
            self.stdout.write(f"  写入 {fmt}: {path}")
        if do_import:
            from pipelines.datasets.services import feedback_import_job_run

            try:
                job = feedback_import_job_run(feedback_file=feedback_file, min_rating=min_rating,
                                              model_name=model_name)
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
            self.stdout.write(f"已导入反馈样本：任务 #{job.pk}，新增 {job.report.get('created', 0)} 条，"
                              f"已存在 {job.report.get('already_imported', 0)} 条")
        self.stdout.write(self.style.SUCCESS(f"共 {len(entries)} 条"))
