"""`manage.py extract_from_logs --log-dir DIR …` — the team's from_logs/extract, same flags and defaults.

    python manage.py extract_from_logs --log-dir DIR --format alpaca --output FILE --limit N \
        --deduplicate --dedup-field prompt --min-length 100 --max-length 10000 \
        --split-ratio 0.8,0.1,0.1 --shuffle --seed 42

Dedup and shuffle are on by default (`--no-deduplicate`, `--no-shuffle` turn them off). With
`--import-records` the folder is also imported into LogRecord rows as a "log_extraction" job.
"""
import argparse
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pipelines.datasets import formats
from pipelines.datasets.builder import report_lines
from pipelines.datasets.exports import build_export, deliver
from pipelines.datasets.logs import LogReader
from pipelines.datasets.options import BuildError, BuildOptions, Source, parse_split_ratio
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Extract training data from LLM call logs (.jsonl) into a training-data file."

    def add_arguments(self, parser):
        parser.add_argument("--log-dir", required=True, help="日志目录路径")
        parser.add_argument("--format", default="alpaca", choices=sorted(formats.FORMATS), dest="fmt",
                            help="目标训练格式（默认 alpaca）")
        parser.add_argument("--output", help="输出文件路径（.json 或 .jsonl），同目录写入 dataset_info.json；"
                            "导出总是记录在 EXPORT_ROOT/logs/ 下的新目录中")
        parser.add_argument("--overwrite", action="store_true", help="覆盖 --output 处已有的文件")
        parser.add_argument("--limit", type=int, help="限制提取的数据数量")
        parser.add_argument("--deduplicate", action=argparse.BooleanOptionalAction, default=True, help="是否去重（默认是）")
        parser.add_argument("--dedup-field", default="prompt", help="去重字段（默认 prompt：指令 + 输入；instruction：仅指令）")
        parser.add_argument("--near-dup", action="store_true", help="另外去除近似重复（MinHash/LSH）")
        parser.add_argument("--near-dup-threshold", type=float, default=0.8, help="近似重复阈值（Jaccard，默认 0.8）")
        parser.add_argument("--min-length", type=int, help="响应最小长度")
        parser.add_argument("--max-length", type=int, help="响应最大长度")
        parser.add_argument("--split-ratio", help="数据集拆分比例，如 0.8,0.1,0.1（默认不拆分）")
        parser.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=True, help="是否打乱数据（默认是）")
        parser.add_argument("--seed", type=int, default=42, help="随机种子（默认 42）")
        parser.add_argument("--import-records", action="store_true", help="同时作为任务导入 LogRecord 表")

    def handle(self, *args, log_dir, fmt, output=None, limit=None, deduplicate=True, dedup_field="prompt",
               near_dup=False, near_dup_threshold=0.8, min_length=None, max_length=None, split_ratio=None,
               shuffle=True, seed=42, import_records=False, overwrite=False, **kwargs):
        if formats.get_format(fmt).kind != "sft":
            raise CommandError(f"日志只含 prompt/answer，不能导出偏好格式 {fmt}")
        try:
            options = BuildOptions(
                format=fmt, dedup=deduplicate, dedup_field=dedup_field, near_dup=near_dup,
                near_dup_threshold=near_dup_threshold, min_length=min_length, max_length=max_length,
                limit=limit, shuffle=shuffle, seed=seed, split_ratio=parse_split_ratio(split_ratio),
            )
            reader = LogReader(log_dir)
            if not reader.files:
                raise CommandError(f"日志目录中没有 .jsonl 文件：{log_dir}")
            file_name = Path(output).name if output else f"{fmt}_from_logs.json"
            if output and Path(output).exists() and not overwrite:
                raise CommandError(f"已存在，未覆盖：{output}（换一个 --output 或加 --overwrite）")
            export, result = build_export([Source("logs", reader)], options, kind="logs", file_name=file_name,
                                          label=Path(file_name).stem, params={"log_dir": str(log_dir), **options.describe()})
            target = Path(output).parent if output else Path(settings.EXPORT_ROOT) / export.path
            if output:
                deliver(export, output, overwrite=overwrite)
        except (BuildError, ApplicationError) as exc:
            raise CommandError(getattr(exc, "message", str(exc))) from exc
        result.report["files"] = {split: str(target / name) for split, name in result.report["files"].items()}
        for line in report_lines(result.report):
            self.stdout.write(line)
        self.stdout.write(f"导出 #{export.pk}：EXPORT_ROOT/{export.path}")
        if import_records:
            self._import(log_dir)
        self.stdout.write(self.style.SUCCESS(f"共写入 {result.total} 条"))

    def _import(self, log_dir):
        from pipelines.datasets.services import log_extraction_job_run

        try:
            job = log_extraction_job_run(log_dir=log_dir)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"已导入 LogRecord：任务 #{job.pk}，{job.report.get('kept', 0)} 条")
