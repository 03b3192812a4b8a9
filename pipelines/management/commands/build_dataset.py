"""`manage.py build_dataset --output FILE [sources] [options]` — the builder over what the product holds.

Sources (at least one): `--logs` (imported LogRecord rows; `--logs-job ID` for one import),
`--log-dir DIR` (read a log folder directly), `--feedback` (feedback samples, rejected ones never;
`--feedback-min-rating`, `--feedback-model`, `--only-reviewed`). `--cap NAME=N` and
`--weight NAME=W` per source. Options as extract_from_logs (dedup and shuffle on, seed 42).

    python manage.py build_dataset --logs --feedback --weight logs=3 --weight feedback=1 \
        --format sharegpt --split-ratio 0.8,0.1,0.1 --near-dup --output exports/mix.json
"""
import argparse
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pipelines.datasets import formats
from pipelines.datasets.builder import report_lines
from pipelines.datasets.exports import build_export, deliver
from pipelines.datasets.logs import LogReader
from pipelines.datasets.options import BuildError, BuildOptions, Source, parse_split_ratio
from pipelines.datasets.selectors import product_sources
from core.errors import ApplicationError


def _per_source(values: list[str], cast, flag: str) -> dict:
    parsed = {}
    for value in values or []:
        name, _, number = value.partition("=")
        try:
            parsed[name.strip()] = cast(number)
        except ValueError:
            raise CommandError(f"{flag} 需要 NAME=数字，得到 {value!r}") from None
    return parsed


class Command(BaseCommand):
    help = "Build a training-data file from imported logs, feedback samples and/or a log folder."

    def add_arguments(self, parser):
        parser.add_argument("--output", required=True, help="输出文件（.json 或 .jsonl）；同目录写入 dataset_info.json。"
                            "导出同时记录在 EXPORT_ROOT/builder/ 下")
        parser.add_argument("--overwrite", action="store_true", help="覆盖 --output 处已有的文件")
        parser.add_argument("--logs", action="store_true", help="使用已导入的日志记录")
        parser.add_argument("--logs-job", type=int, help="只用这个日志导入任务的记录")
        parser.add_argument("--log-dir", help="直接读取日志目录")
        parser.add_argument("--feedback", action="store_true", help="使用反馈样本（不含被拒绝的）")
        parser.add_argument("--feedback-min-rating", type=int, default=4)
        parser.add_argument("--feedback-model", default="")
        parser.add_argument("--only-reviewed", action="store_true", help="只用已接受 / 修改后接受的反馈")
        parser.add_argument("--cap", action="append", metavar="NAME=N", help="某来源最多取 N 条")
        parser.add_argument("--weight", action="append", metavar="NAME=W", help="来源混合权重")
        parser.add_argument("--format", default="alpaca", choices=sorted(formats.SFT_FORMATS), dest="fmt")
        parser.add_argument("--limit", type=int)
        parser.add_argument("--deduplicate", action=argparse.BooleanOptionalAction, default=True)
        parser.add_argument("--dedup-field", default="prompt")
        parser.add_argument("--near-dup", action="store_true")
        parser.add_argument("--near-dup-threshold", type=float, default=0.8)
        parser.add_argument("--min-length", type=int)
        parser.add_argument("--max-length", type=int)
        parser.add_argument("--split-ratio")
        parser.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=True)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--name", help="dataset_info.json 中的数据集名称（默认取文件名）")

    def handle(self, *args, **o):
        caps = _per_source(o["cap"], int, "--cap")
        weights = _per_source(o["weight"], float, "--weight")
        try:
            sources = []
            if o["logs"] or o["feedback"]:
                sources += product_sources(
                    logs=o["logs"], logs_job_id=o["logs_job"], feedback=o["feedback"],
                    feedback_min_rating=o["feedback_min_rating"], feedback_model=o["feedback_model"],
                    feedback_only_reviewed=o["only_reviewed"], caps=caps, weights=weights)
            if o["log_dir"]:
                sources.append(Source("log_dir", LogReader(o["log_dir"]), cap=caps.get("log_dir"),
                                      weight=weights.get("log_dir")))
            if not sources:
                raise CommandError("请至少指定一个数据源：--logs、--log-dir 或 --feedback")
            options = BuildOptions(
                format=o["fmt"], limit=o["limit"], dedup=o["deduplicate"], dedup_field=o["dedup_field"],
                near_dup=o["near_dup"], near_dup_threshold=o["near_dup_threshold"], min_length=o["min_length"],
                max_length=o["max_length"], split_ratio=parse_split_ratio(o["split_ratio"]), shuffle=o["shuffle"],
                seed=o["seed"], dataset_name=o["name"],
            )
            output = Path(o["output"])
            export, result = build_export(sources, options, kind="builder", file_name=output.name, label=output.stem)
            delivered = deliver(export, output, overwrite=o["overwrite"])
        except (BuildError, ApplicationError) as exc:
            raise CommandError(getattr(exc, "message", str(exc))) from exc
        result.report["files"] = {split: str(output.parent / name) for split, name in result.report["files"].items()}
        self.stdout.write(f"导出 #{export.pk}：EXPORT_ROOT/{export.path}；复制 {len(delivered)} 个文件到 {output.parent}")
        for line in report_lines(result.report):
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS(f"共写入 {result.total} 条"))
