"""Writes of the DPO area: importing a prompt file, storing a prompt's pairs, the job's batch check,
a reviewer's decision on a pair, and exporting a job's pairs through the dataset builder."""
from __future__ import annotations

import shutil
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from core.errors import ApplicationError, conflict_error

from ..datasets import formats
from ..models import Job, PreferencePair, ReviewDecision
from . import checks
from .pairs import job_context
from .selectors import export_records

def prompt_file_import(*, path: Path) -> str:
    """Copy a prompt file under MEDIA_ROOT/dpo/imports (jobs read imports only from there); its relative path."""
    relative = f"dpo/imports/{uuid.uuid4().hex}.jsonl"
    target = Path(settings.MEDIA_ROOT) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    return relative


PAIR_FIELDS = ("key", "source", "prompt", "chosen", "rejected", "images", "strategy", "issues", "metrics")


@transaction.atomic
def pairs_store(*, job: Job, pairs: list[dict[str, Any]]) -> list[PreferencePair]:
    """Write a prompt's pairs idempotently (one row per job and key); a reviewed pair is left alone."""
    stored = []
    for pair in pairs:
        existing = PreferencePair.objects.select_for_update().filter(job=job, key=pair["key"]).first()
        if existing is not None and existing.decision != ReviewDecision.PENDING:
            stored.append(existing)
            continue
        defaults = {name: pair[name] for name in PAIR_FIELDS if name != "key"}
        row, _ = PreferencePair.objects.update_or_create(job=job, key=pair["key"], defaults=defaults)
        stored.append(row)
    return stored


# --------------------------------------------------------------------------- the job
def job_checks(job: Job) -> dict[str, Any]:
    """Run the batch check (boilerplate) over all pairs of a job, store it, and build the job report."""
    rows = list(PreferencePair.objects.filter(job=job).order_by("id").values_list("id", "prompt", "rejected", "issues", "metrics"))
    clusters = checks.find_boilerplate([r[1] for r in rows], [r[2] for r in rows])
    membership = {}
    for number, cluster in enumerate(clusters, start=1):
        for index in cluster.members:
            membership[index] = (number, cluster.prompts)
    changed = []
    for index, (pk, _prompt, _rejected, issues, metrics) in enumerate(rows):
        issues = [i for i in issues if i != "boilerplate"]
        metrics = {k: v for k, v in (metrics or {}).items() if not k.startswith("boilerplate_")}
        if index in membership:
            issues.append("boilerplate")
            issues.sort(key=checks.ISSUE_NAMES.index)
            metrics["boilerplate_cluster"], metrics["boilerplate_prompts"] = membership[index]
        if issues != rows[index][3] or metrics != (rows[index][4] or {}):
            changed.append(PreferencePair(pk=pk, issues=issues, metrics=metrics))
    PreferencePair.objects.bulk_update(changed, ["issues", "metrics"], batch_size=500)
    issue_lists = list(PreferencePair.objects.filter(job=job).values_list("issues", flat=True))
    report = checks.batch_report(issue_lists, clusters)
    failed = Counter(job.items.filter(status="failed").values_list("error_kind", flat=True))
    report["failed_items"] = dict(failed)
    fallbacks = (((job.report or {}).get("engine") or {}).get("llm") or {}).get("n_fallbacks") or 0
    if fallbacks:
        n = job.params["strategy"].get("n", 1)
        report["n_ignored"] = {"prompts": fallbacks, "n": n,
                               "message": f"模型服务忽略了 n={n}（只返回一个候选）：已改为每个 prompt 分别请求 {n} 次"}
    report["context"] = job_context(job.params)
    return report


# --------------------------------------------------------------------------- review (services)
REVIEW_ACTIONS = {
    "accept": "接受",
    "swap": "交换 chosen / rejected",
    "edit": "保存修改",
    "discard": "丢弃",
    "reset": "恢复待审核",
}
# What an action did, for the notice after it ("已丢弃 feedback:3，已进入下一条。").
REVIEW_DONE = {"accept": "已接受", "swap": "已交换", "edit": "已保存修改", "discard": "已丢弃", "reset": "已恢复待审核"}
# Actions that decide a pair and move the reviewer on to the next one (reset stays on the pair).
DECIDING_ACTIONS = ("accept", "swap", "edit", "discard")


def can_review_pairs(user) -> bool:
    """Any signed-in, active user may review pairs: pairs belong to no category, so assignments do not apply."""
    return bool(user and user.is_authenticated and user.is_active)


def _recheck(pair: PreferencePair, *, keep_boilerplate: bool) -> None:
    """Re-run the per-pair checks after an edit; the batch-level boilerplate flag survives only if asked."""
    result = checks.check_pair(pair.prompt, pair.chosen, pair.rejected)
    metrics = dict(result.metrics)
    if keep_boilerplate and "boilerplate" in pair.issues:
        metrics.update({k: v for k, v in pair.metrics.items() if k.startswith("boilerplate_")})
        result.issues.append("boilerplate")
        result.issues.sort(key=checks.ISSUE_NAMES.index)
    pair.issues, pair.metrics = result.issues, metrics


@transaction.atomic
def pair_review(
    *, pair: PreferencePair, user, action: str, version: int, chosen: str | None = None, rejected: str | None = None
) -> PreferencePair:
    """A reviewer's decision on a pair: accept, swap the two answers, edit either side, discard, or reset.

    `version` is the version the reviewer saw; ApplicationError(code="conflict") if someone saved since.
    Swapping and editing re-run the pair checks on the new texts.
    """
    from django.utils import timezone

    if not can_review_pairs(user):
        raise ApplicationError("没有审核权限", code="forbidden")
    if action not in REVIEW_ACTIONS:
        raise ApplicationError("未知操作")
    pair = PreferencePair.objects.select_for_update().get(pk=pair.pk)
    if int(version) != pair.version:
        raise conflict_error("这条偏好对已被其他人修改，请刷新后再操作", current_version=pair.version)
    if action == "swap":
        if not pair.rejected.strip():
            raise ApplicationError("rejected 为空，不能交换")
        pair.chosen, pair.rejected = pair.rejected, pair.chosen
        _recheck(pair, keep_boilerplate=False)
        pair.metrics["swapped"] = True
        pair.decision = ReviewDecision.EDITED
    elif action == "edit":
        new_chosen = pair.chosen if chosen is None else chosen.strip()
        new_rejected = pair.rejected if rejected is None else rejected.strip()
        if not new_chosen or not new_rejected:
            raise ApplicationError("chosen 和 rejected 都不能为空")
        keep = new_rejected == pair.rejected
        pair.chosen, pair.rejected = new_chosen, new_rejected
        _recheck(pair, keep_boilerplate=keep)
        pair.decision = ReviewDecision.EDITED
    elif action == "accept":
        pair.decision = ReviewDecision.ACCEPTED
    elif action == "discard":
        pair.decision = ReviewDecision.REJECTED
    else:
        pair.decision = ReviewDecision.PENDING
    pair.decided_by = user if action != "reset" else None
    pair.decided_at = timezone.now() if action != "reset" else None
    pair.version += 1
    pair.save()
    return pair


# --------------------------------------------------------------------------- export
EXPORT_FORMATS = {
    "trl_preference": "TRL 标准（prompt / chosen / rejected）",
    "trl_preference_conversational": "TRL 对话式（messages）",
    "alpaca_preference": "LLaMA-Factory alpaca 风格（ranking）",
    "sharegpt_preference": "LLaMA-Factory sharegpt 风格（ranking）",
    "prompt_chosen_reject": "团队训练脚本（prompt / chosen / reject）",
}
# The export formats that keep a pair's images (the others refuse image pairs with a message).
IMAGE_EXPORT_FORMATS = tuple(f for f in EXPORT_FORMATS if "images" in formats.FORMATS[f].optional_columns)


def export_file_name(*, job: Job, fmt: str) -> str:
    """The data file's name inside a DPO export's folder (each export has a folder of its own)."""
    suffix = "jsonl" if fmt.startswith("trl") or fmt == "prompt_chosen_reject" else "json"
    return f"dpo_job{job.pk}_{fmt}.{suffix}"


def pairs_export(*, job: Job, fmt: str, user=None, include_flagged: bool = False, file_name: str | None = None):
    """Export a job's pairs through the dataset builder into a new export folder; returns the Export.

    `file_name`: the data file's name in the folder (default `dpo_job<id>_<format>.json[l]`)."""
    from ..datasets.exports import build_export
    from ..datasets.options import BuildError, BuildOptions, Source

    if fmt not in EXPORT_FORMATS:
        raise ApplicationError("未知导出格式")
    counts: Counter = Counter()
    supports_images = "images" in formats.FORMATS[fmt].optional_columns

    def records():
        counts.clear()  # the builder may read the source more than once
        for record in export_records(job=job, include_flagged=include_flagged, counts=counts):
            if record.get("images") and not supports_images:
                # Dropping the image but keeping "<image>" in the prompt would train on text alone.
                raise ApplicationError(
                    f"偏好对 {record['id']} 带图片，{EXPORT_FORMATS[fmt]} 不能携带图片；图片偏好对请选："
                    + "、".join(EXPORT_FORMATS[f] for f in IMAGE_EXPORT_FORMATS), code="images_unsupported")
            yield record

    options = BuildOptions(
        format=fmt,
        # Several rejects per prompt are several rows: never dedup on the prompt.
        dedup=False,
        shuffle=False,
        dataset_name=Path(file_name).stem if file_name else f"dpo_job{job.pk}_{fmt}",
    )
    try:
        export, _ = build_export(
            [Source("dpo", records)], options, kind="dpo", file_name=file_name or export_file_name(job=job, fmt=fmt), user=user,
            params={"job_id": job.pk, "include_flagged": include_flagged}, label=f"job{job.pk}-{fmt}",
            extra_report=lambda: {"pairs": dict(counts)},
        )
    except BuildError as exc:
        raise ApplicationError(str(exc)) from None
    return export
