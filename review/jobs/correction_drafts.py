"""Job kind "correction_draft": the model drafts a corrected mode-3 output for every sample whose
mode-3 output is wrong, unparseable or over TRAINSET_MAX_LENGTH (the seed's "按照同类别的output分析过程"
rewrite).

Parameters: `dataset` (name or id), optionally `categories` (names; default all), `sample_ids` (a
subset), `examples` (2 or 3, default 3), `redraft` (default False: a sample that already has a
draft waiting for its mode-3 output is skipped), `prompt_template_id` (default: the newest
"修正草稿" prompt, pinned when the job is created), plus the engine's overrides (model, …).

The model gets the image, the label, the label's definition and up to `examples` correct,
within-limit mode-3 outputs of the same class (reviewer-confirmed ones first), and must answer in
the same format within the limit. Each answer is stored as a `review.models.CorrectionDraft` —
a suggestion, never training data — checked by `review.rules.check_correction` as a reviewer's
correction would be: a draft failing the checks is kept and shown as failed (the item succeeds;
the report counts them), never offered for one-key acceptance.
"""
from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Count, Q

from core.errors import ApplicationError
from pipelines.jobs.kinds import ItemFailed, JobKindHandler, register
from pipelines.jobs.selectors import ACTIVE_STATUSES
from pipelines.models import ItemStatus, Job, JobItem, JobKind, PromptTemplate
from review import rules
from review.models import CorrectionDraft, Mode, Reasoning, Review, Sample
from review.services import correction_check

from .classification import (
    PromptCache, image_message, pinned_template, resolve_categories, resolve_dataset, sample_job_params,
)

# Why the model's own mode-3 output cannot be exported as it is (review.rules): these get drafts.
DRAFTED_STATUSES = (rules.WRONG, rules.UNPARSED, rules.TOO_LONG)
DEFAULT_EXAMPLES = 3


def render_draft_prompt(text: str, *, label: str, definition: str, limit: int, examples: list[str]) -> str:
    """Fill the 修正草稿 template (placeholders replaced literally)."""
    shown = "\n\n".join(f"示例{i}：\n{example.strip()}" for i, example in enumerate(examples, 1)) or "（本类别暂无可用示例）"
    return (text.replace("{label}", label).replace("{definition}", definition or "（无定义）")
            .replace("{limit}", str(limit)).replace("{examples}", shown))


def drafted_sample_ids(*, dataset_id: int, category_ids: list[int] | None = None, sample_ids: list[int] | None = None,
                       redraft: bool = False) -> list[int]:
    """The samples a drafting job works on: mode 3 wrong, unparseable or too long, not corrected and
    not flagged as a label error (review.rules export status), not waiting in another drafting job,
    in class and id order."""
    samples = Sample.objects.filter(dataset_id=dataset_id)
    if category_ids:
        samples = samples.filter(label_id__in=category_ids)
    if sample_ids is not None:
        samples = samples.filter(pk__in=sample_ids)
    rows = list(rules.with_status(samples).filter(export_status__in=DRAFTED_STATUSES)
                .order_by("label__position", "label_id", "external_id").values_list("pk", "m3__version"))
    # A sample another drafting job is still working on is not drafted twice (a double click).
    in_flight = set(JobItem.objects.filter(
        job__kind=JobKind.CORRECTION_DRAFT, job__status__in=ACTIVE_STATUSES,
        status__in=(ItemStatus.PENDING, ItemStatus.RUNNING), key__in=[str(pk) for pk, _ in rows],
    ).values_list("key", flat=True))
    rows = [(pk, version) for pk, version in rows if str(pk) not in in_flight]
    if redraft:
        return [pk for pk, _ in rows]
    waiting = set(CorrectionDraft.objects.filter(sample_id__in=[pk for pk, _ in rows], status=CorrectionDraft.Status.OFFERED)
                  .values_list("sample_id", "mode3_version"))
    return [pk for pk, version in rows if (pk, version) not in waiting]


def class_examples(*, category_id: int, limit: int, count: int) -> list[tuple[int, str, str]]:
    """Up to `count` (+1, so that one can be left out for the sample itself) correct, within-limit
    mode-3 outputs of the class as (sample id, external id, text): reviewer corrections and
    reviewer-kept outputs first, then the model's correct ones; in id order within each."""
    corrected = list(
        Review.objects.filter(sample__label_id=category_id, label_error=False, corrected_category_id=category_id,
                              corrected_length__lte=limit)
        .exclude(corrected_output="")
        .order_by("sample__external_id").values_list("sample_id", "sample__external_id", "corrected_output")[:count + 1]
    )
    kept = Reasoning.objects.filter(sample__label_id=category_id, mode=Mode.LIMITED, is_correct=True, length__lte=limit,
                                    sample__review__isnull=False, sample__review__label_error=False,
                                    sample__review__corrected_output="")
    plain = Reasoning.objects.filter(sample__label_id=category_id, mode=Mode.LIMITED, is_correct=True, length__lte=limit,
                                     sample__review__isnull=True)
    found = corrected
    for queryset in (kept, plain):
        if len(found) > count:
            break
        found += list(queryset.order_by("sample__external_id")
                      .values_list("sample_id", "sample__external_id", "output")[:count + 1 - len(found)])
    return found


@register
class CorrectionDraftHandler(JobKindHandler):
    kind = JobKind.CORRECTION_DRAFT
    queue = "classification"
    repinned_on_retry = ("prompt_template_id", "prompt_version")

    def __init__(self) -> None:
        self._cache = PromptCache()

    def clean_params(self, params: dict[str, Any]) -> dict[str, Any]:
        dataset = resolve_dataset(params.get("dataset") or params.get("dataset_id"))
        categories = resolve_categories(dataset, list(params.get("categories") or []))
        try:
            examples = int(params.get("examples") or DEFAULT_EXAMPLES)
        except (TypeError, ValueError):
            examples = 0
        if examples not in (2, 3):
            raise ApplicationError("示例数必须是 2 或 3")
        template = pinned_template(params, PromptTemplate.Kind.CORRECTION_DRAFT, missing="修正草稿提示词版本不存在")
        cleaned = sample_job_params(params, dataset=dataset, categories=categories, template=template,
                                    examples=examples, redraft=bool(params.get("redraft")))
        if params.get("sample_ids") is not None:
            cleaned["sample_ids"] = [int(s) for s in params["sample_ids"]]
        return cleaned

    def item_keys(self, job: Job):
        ids = drafted_sample_ids(dataset_id=job.params["dataset_id"], category_ids=job.params.get("category_ids"),
                                 sample_ids=job.params.get("sample_ids"), redraft=job.params.get("redraft", False))
        if not ids:
            raise ApplicationError("没有需要起草修正的样本：所选类别中没有模式3推理错误或超字数、且尚未修正的样本"
                                   "（已有待处理草稿的样本会跳过，除非选择重新起草）。")
        return (str(pk) for pk in ids)

    def _examples(self, job: Job, category_id: int) -> list[tuple[int, str, str]]:
        limit = rules.length_limit()
        return self._cache.get(job, f"examples-{category_id}", lambda: class_examples(
            category_id=category_id, limit=limit, count=job.params.get("examples", DEFAULT_EXAMPLES)))

    def prepare(self, job: Job, key: str) -> dict[str, Any]:
        sample = (Sample.objects.filter(pk=key, dataset_id=job.params["dataset_id"]).select_related("label").first())
        if sample is None:
            raise ItemFailed("missing", "样本已不存在")
        mode3 = Reasoning.objects.filter(sample=sample, mode=Mode.LIMITED).values("version").first()
        if mode3 is None:
            raise ItemFailed("missing", "样本没有模式3输出")
        wanted = job.params.get("examples", DEFAULT_EXAMPLES)
        examples = [(external_id, text) for sample_id, external_id, text in self._examples(job, sample.label_id)
                    if sample_id != sample.pk][:wanted]
        template = self._cache.get(job, "template",
                                   lambda: PromptTemplate.objects.get(pk=job.params["prompt_template_id"]).text)
        prompt = render_draft_prompt(template, label=sample.label.name, definition=sample.label.effective_definition,
                                     limit=rules.length_limit(), examples=[text for _, text in examples])
        return {"sample_id": sample.pk, "mode3_version": mode3["version"], "examples": [i for i, _ in examples],
                "messages": image_message(prompt, sample.image)}

    async def call(self, llm, payload: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        result = await llm.chat(payload["messages"], model=params.get("model"), temperature=params.get("temperature"),
                                top_p=params.get("top_p"), max_tokens=params.get("max_tokens"))
        return {"text": result.text, "model": result.model}

    @transaction.atomic
    def store(self, job: Job, key: str, payload: dict[str, Any], output: dict[str, Any]) -> dict[str, Any]:
        text = (output.get("text") or "").strip()
        if not text:
            raise ItemFailed("unparseable", "模型没有给出草稿内容")
        sample = Sample.objects.select_related("label").get(pk=payload["sample_id"])
        check = correction_check(sample=sample, text=text)
        draft, created = CorrectionDraft.objects.get_or_create(sample=sample, job=job, defaults={
            "text": text, "mode3_version": payload["mode3_version"], "predicted_name": check.predicted_name,
            "length": check.length, "problems": check.problems, "examples": payload["examples"],
            "model_name": output.get("model") or job.params.get("model") or "",
        })
        if created:
            # One draft waits per sample: the newest.
            (CorrectionDraft.objects.filter(sample=sample, status=CorrectionDraft.Status.OFFERED)
             .exclude(pk=draft.pk).update(status=CorrectionDraft.Status.SUPERSEDED))
        return {"draft_id": draft.pk, "ok": not draft.problems, "problems": draft.problems}

    def finalize(self, job: Job) -> dict[str, Any]:
        row = job.items.aggregate(
            passed=Count("id", filter=Q(result__ok=True)),
            failed_checks=Count("id", filter=Q(result__ok=False)),
        )
        return {"dataset": job.params.get("dataset"), "prompt_version": job.params.get("prompt_version"),
                "model": job.params.get("model"), "examples": job.params.get("examples"),
                "drafts": row["passed"] + row["failed_checks"], "passed_checks": row["passed"],
                "failed_checks": row["failed_checks"]}

