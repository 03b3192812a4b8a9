"""Generate and judge visual QA examples from a source file, writing the team's files to DIR."""
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pipelines.generation.run_files import write_checkpoint, write_run_files
from pipelines.generation.services import source_items_import
from pipelines.models import Job, JobKind
from core.errors import ApplicationError

from pipelines.jobs.cli import add_run_mode_arguments, follow_to_end


class Command(BaseCommand):
    help = (
        "Import --source, generate + judge one example per item (or a --sample), and write "
        "generated_examples.jsonl, failed_examples.jsonl, pipeline_report.json and checkpoint.json "
        "to --output. Run again with the same --output to resume an interrupted run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source", required=True, help="JSON array or JSONL of source items (data_clean.json)")
        parser.add_argument("--output", required=True, help="output directory")
        parser.add_argument("--sample", type=int, help="a reproducible sample of N items")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--collection", help="source set name (default: the source file name)")
        parser.add_argument("--multiple-choice-ratio", type=float, default=0.3)
        parser.add_argument("--pass-threshold", type=float, default=7.0)
        parser.add_argument("--temperature", type=float, default=0.7)
        parser.add_argument("--concurrency", type=int)
        parser.add_argument("--model", help="generation (vision) model (default: LLM_VISION_MODEL)")
        parser.add_argument("--judge-model", help="judge model (default: LLM_JUDGE_MODEL)")
        parser.add_argument("--max-tokens", type=int, help="max_tokens of the question and response calls")
        for name in ("temperature", "top-p", "max-tokens"):
            parser.add_argument(f"--judge-{name}", help=f"the judge's {name} (default: LLM_JUDGE_{name.upper().replace('-', '_')};"
                                                        " 'omit' sends none)")
        add_run_mode_arguments(parser)

    def handle(self, *args, **options):
        from pipelines.jobs.services import job_create, job_resume, run_job_inline

        output = Path(options["output"]).resolve()
        job = self._previous_job(output)
        try:
            if job is not None:
                if job.items.exclude(status__in=["done", "failed"]).exists():
                    self.stdout.write(f"继续任务 #{job.pk}（检查点 {output / 'checkpoint.json'}），已完成的条目不会重做")
                    job = job_resume(job=job)
                else:
                    self.stdout.write(f"任务 #{job.pk} 已全部完成，重写输出文件")
                    self._summary(write_run_files(job, output), output)
                    return
            else:
                job = self._create(options, output, job_create)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        write_checkpoint(job, output)
        if options["inline"]:
            def progress(p):
                self.stderr.write(f"\r{p.finished}/{p.total} 完成（失败 {p.failed}）", ending="")

            job = run_job_inline(job, on_progress=progress)
            self.stderr.write("")
        elif options["wait"]:
            # run_generation's --wait used to run the job here; every command now means "queue
            # and follow" by it (run_classification, run_dpo …). Scripts written for the old meaning
            # still finish their run, through a worker; this note tells them how to keep it local.
            self.stderr.write("注意：--wait 现在与其他任务命令一致，表示交给 Celery worker 运行并等待结束；"
                              "要像以前一样在本进程运行，请改用 --inline。")
            job = follow_to_end(job, timeout=options["timeout"], warn=self.stderr.write)
        else:
            self.stdout.write(f"已排队任务 #{job.pk}（{job.items_total} 条）；worker 运行时写入 {output}")
            return
        self._summary(write_run_files(job, output), output)

    def _previous_job(self, output: Path) -> Job | None:
        checkpoint = output / "checkpoint.json"
        if not checkpoint.is_file():
            return None
        try:
            job_id = json.loads(checkpoint.read_text(encoding="utf-8")).get("job_id")
        except (ValueError, AttributeError):
            raise CommandError(f"{checkpoint} 无法读取；删除它以重新开始") from None
        return Job.objects.filter(pk=job_id, kind=JobKind.GENERATION).first()

    def _create(self, options, output: Path, job_create) -> Job:
        source = Path(options["source"])
        if not source.is_file():
            raise CommandError(f"文件不存在: {source}")
        collection = options["collection"] or source.name
        report = source_items_import(text=source.read_text(encoding="utf-8"), collection=collection)
        for problem in report.problems:
            self.stderr.write(f"{source}:{problem.line}: {problem.message}")
        self.stdout.write(f"导入 {collection}: 新增 {report.created}，更新 {report.updated}，问题 {len(report.problems)} 行")
        params = {
            "collection": collection,
            "sample": options["sample"],
            "seed": options["seed"],
            "multiple_choice_ratio": options["multiple_choice_ratio"],
            "pass_threshold": options["pass_threshold"],
            "temperature": options["temperature"],
            "output_dir": str(output),
        }
        for name in ("concurrency", "model", "judge_model", "max_tokens", "judge_temperature", "judge_top_p",
                     "judge_max_tokens"):
            if options.get(name) not in (None, ""):
                params[name] = options[name]
        job = job_create(kind=JobKind.GENERATION, params=params)
        self.stdout.write(f"创建任务 #{job.pk}：{job.items_total} 条")
        return job

    def _summary(self, report: dict, output: Path) -> None:
        stats = report["pipeline_stats"]
        self.stdout.write(
            f"通过 {stats['valid_examples']}，未通过 {stats['failed_validation']}，生成错误 {stats['generation_errors']}"
            f" → {output}"
        )
