"""Writes of the generation area: importing source items, overruling the judge on a failed example,
re-running failed items with changed settings, and exporting a run's training set. Keyword-only."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.errors import ApplicationError, decision_version_check

from ..models import GeneratedExample, Job, JobKind, ReviewDecision, SourceItem
from . import judge as judge_module
from .params import DEFAULT_PARAMS
from .run_files import write_jsonl
from .selectors import training_examples
from .sources import ImportProblem, ImportReport, parse_source_record, read_source_records, sample_records
from .structure import check_structure

@transaction.atomic
def source_items_import(*, text: str, collection: str, sample: int | None = None, seed: int = 42) -> ImportReport:
    """Import source items from JSON/JSONL text into `collection`; bad records are reported, not fatal.

    Re-importing updates items by their id, so an import can be repeated safely.
    """
    if not collection.strip():
        raise ApplicationError("请指定来源集合名称")
    raw, problems = read_source_records(text)
    report = ImportReport(collection=collection, problems=problems)
    parsed = []
    seen: set[str] = set()
    for line, record in raw:
        try:
            fields = parse_source_record(record, line=line)
        except ValueError as exc:
            report.problems.append(ImportProblem(line, str(exc)))
            continue
        if fields["external_id"] in seen:
            report.problems.append(ImportProblem(line, f"重复的 id {fields['external_id']}，已跳过"))
            continue
        seen.add(fields["external_id"])
        parsed.append(fields)
    report.problems.sort(key=lambda p: p.line)
    existing = {
        item.external_id: item
        for item in SourceItem.objects.filter(collection=collection, external_id__in=[p["external_id"] for p in parsed])
    }
    to_create, to_update = [], []
    for fields in sample_records(parsed, sample, seed=seed):
        item = existing.get(fields["external_id"])
        if item is None:
            to_create.append(SourceItem(collection=collection, **fields))
        else:
            for name, value in fields.items():
                setattr(item, name, value)
            to_update.append(item)
        report.external_ids.append(fields["external_id"])
    SourceItem.objects.bulk_create(to_create, batch_size=500)
    if to_update:
        SourceItem.objects.bulk_update(to_update, ["image", "wiki_title", "facts", "attributes"], batch_size=500)
    report.created, report.updated = len(to_create), len(to_update)
    return report


# --------------------------------------------------------------------------- services
def can_overrule(user) -> bool:
    """Any signed-in, active user may overrule the judge: generated examples belong to no category,
    so the category assignments that limit reviewers elsewhere do not apply here."""
    return bool(user and user.is_authenticated and user.is_active)


@transaction.atomic
def generated_example_decide(
    *, example: GeneratedExample, user, decision: str, version: int, edited_response: str = ""
) -> GeneratedExample:
    """Overrule the judge on a failed example: accept as is, accept an edited response, or reject.

    `version` is the version the reviewer saw; a newer one means someone decided in between.
    """
    if not can_overrule(user):
        raise ApplicationError("请先登录", code="forbidden")
    if decision not in {ReviewDecision.ACCEPTED, ReviewDecision.EDITED, ReviewDecision.REJECTED}:
        raise ApplicationError("未知的决定")
    example = GeneratedExample.objects.select_for_update().get(pk=example.pk)
    if example.passed:
        raise ApplicationError("该样本已通过评判，无需人工复核")
    decision_version_check(example, version)
    edited_response = (edited_response or "").strip()
    if decision == ReviewDecision.EDITED:
        if not edited_response:
            raise ApplicationError("修改后接受需要填写修改后的回答")
        problems = check_structure(edited_response)
        if problems:
            raise ApplicationError("修改后的回答结构不完整：" + "，".join(problems))
        if edited_response == example.response.strip():
            decision = ReviewDecision.ACCEPTED  # nothing was changed
            edited_response = ""
    else:
        edited_response = ""
    if decision == ReviewDecision.ACCEPTED and check_structure(example.response):
        # A response without its tags would teach the wrong format: fix it, then accept.
        raise ApplicationError("回答结构不完整，不能原样接受；请补全标签后“修改后接受”")
    example.decision = decision
    example.edited_response = edited_response
    example.decided_by = user
    example.decided_at = timezone.now()
    example.version += 1
    example.save(update_fields=["decision", "edited_response", "decided_by", "decided_at", "version", "updated_at"])
    return example


RERUN_SETTINGS = ("temperature", "multiple_choice_ratio", "pass_threshold", "model", "judge_model",
                  "judge_temperature", "judge_top_p", "judge_max_tokens")
# Changing only these re-judges the stored answers instead of generating new ones.
JUDGE_SETTINGS = ("pass_threshold", "judge_model", "judge_temperature", "judge_top_p", "judge_max_tokens")


@transaction.atomic
def generation_rerun_failed(*, job: Job, user, changes: dict[str, Any]) -> Job:
    """A new job over the run's failed items nobody has decided on yet, with changed settings.

    The re-run's parent is the original run, so before/after pass rates can be compared.
    """
    from ..jobs.services import job_create

    if job.kind != JobKind.GENERATION or job.parent_id is not None:
        raise ApplicationError("只能对原始生成任务重跑失败项")
    if job.is_active:
        raise ApplicationError("任务仍在运行，结束后才能重跑失败项")
    unknown = set(changes) - set(RERUN_SETTINGS)
    if unknown:
        raise ApplicationError(f"不能修改的设置：{', '.join(sorted(unknown))}")
    changed = {}
    for name, value in changes.items():
        if value in (None, ""):
            continue
        try:
            if name.startswith("judge_") and name != "judge_model":
                value = judge_module.clean_judge_param(name.removeprefix("judge_"), value)
            else:
                value = float(value) if name not in {"model", "judge_model"} else str(value)
        except (TypeError, ValueError) as exc:
            raise ApplicationError(str(exc) if isinstance(exc, ValueError) and "评判" in str(exc)
                                   else f"{name} 必须是数字") from None
        if value != job.params.get(name, DEFAULT_PARAMS.get(name)):
            changed[name] = value
    if not changed:
        raise ApplicationError("请至少修改一项生成设置再重跑")
    keys = list(
        GeneratedExample.objects.filter(job=job, passed=False, decision=ReviewDecision.PENDING)
        .order_by("id").values_list("source_item__external_id", flat=True)
    )
    if not keys:
        raise ApplicationError("没有待处理的失败样本可以重跑")
    params = {k: v for k, v in job.params.items() if k not in {"output_dir", "sample"}}
    params.update(changed)
    params["source_ids"] = keys
    if set(changed) <= set(JUDGE_SETTINGS):
        params["rejudge"] = True  # the answers stay; only the verdicts are asked for again
    params["rerun_changes"] = {k: {"before": job.params.get(k, DEFAULT_PARAMS.get(k)), "after": v} for k, v in changed.items()}
    return job_create(kind=JobKind.GENERATION, params=params, user=user, parent=job)


EXPORT_FORMATS = ("sharegpt_multimodal", "openai")


def training_record(example: GeneratedExample, provenance: str) -> dict:
    """One example as a builder record (formats.py contract); images relative to MEDIA_ROOT."""
    response = example.edited_response if example.decision == ReviewDecision.EDITED else example.response
    images = [example.source_item.image] if example.source_item.image else []
    return {
        "id": example.example_id,
        "prompt": ("<image>" * len(images)) + example.question,
        "response": response,
        "images": images,
        "meta": {"provenance": provenance, "job": example.job_id, "overall_score": example.overall_score},
    }


def generation_export(*, job: Job, user, formats: tuple[str, ...] = EXPORT_FORMATS):
    """Export the run's passed + rescued examples as sharegpt-with-images and OpenAI messages.

    Written through the dataset builder into a new export folder (`pipelines.datasets.exports`), with the
    LLaMA-Factory dataset_info.json entries and provenance.jsonl marking each example's origin
    (judge_passed, rerun_passed, human_accepted, human_edited). Returns the Export row.
    """
    from ..datasets.builder import build_dataset
    from ..datasets.options import BuildOptions, Source
    from ..datasets.exports import ExportContent, export_create

    if not (user and user.is_staff):
        raise ApplicationError("只有管理员可以导出", code="forbidden")
    pairs = training_examples(job)
    if not pairs:
        raise ApplicationError("没有可导出的样本（没有通过或被人工接受的样本）")
    by_provenance = Counter(p for _, p in pairs)

    def write(directory: Path) -> ExportContent:
        written, reports, entries = {}, {}, {}
        for fmt in formats:
            records = [training_record(e, p) for e, p in pairs]
            if fmt == "openai":
                # OpenAI messages carry text only: no image column, no <image> token.
                records = [{**r, "prompt": r["prompt"].replace("<image>", ""), "images": []} for r in records]
            sources = [Source(p, [r for r, (_, prov) in zip(records, pairs) if prov == p]) for p in by_provenance]
            result = build_dataset(
                sources,
                BuildOptions(format=fmt, dedup=False, shuffle=False, dataset_name=f"generation_run{job.pk}_{fmt}"),
                output=directory / f"generation_{fmt}.json",
            )
            written[fmt] = Path(result.files["all"]).name
            entries.update(result.report["dataset_info"])
            reports[fmt] = {"total": result.total, "dataset_info": result.report.get("dataset_info"),
                            "invalid_examples": result.report.get("invalid_examples")}
        write_jsonl(directory / "provenance.jsonl", (
            {"id": e.example_id, "provenance": p, "job": e.job_id, "source": e.source_item.external_id,
             "overall_score": e.overall_score,
             "decided_by": e.decided_by.get_username() if e.decided_by else None}
            for e, p in pairs
        ))
        return ExportContent(row_count=len(pairs), dataset_info=entries, report={
            "files": written, "provenance": dict(by_provenance), "formats": reports})

    return export_create(kind="generation", fmt=",".join(formats), write=write, user=user,
                         params={"job": job.pk}, label=f"run{job.pk}")
