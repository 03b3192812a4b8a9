"""Job kind "classification": the model reasons about each sample's image in mode 1, 2 or 3.

Parameters: `dataset` (name or id), `mode` (1/2/3), optionally `categories` (names; default all),
`sample_ids` (a subset), `prompt_template_id` (default: the mode's newest version, pinned when the
job is created), `logprobs` (ask the server for token log-probabilities; the answer line's are kept
in `raw_response` for the label-error ranking), plus the engine's overrides (model, temperature, max_tokens, concurrency …).

Each answer becomes a version of the sample's Reasoning for the mode, recording the prompt version
and the model (`review.services.reasonings_store`): on a reviewed sample it waits for the reviewer
instead of replacing what the review judged. The predicted class is read by
`review.rules.answer_fields`; an answer naming no class (or several) is stored with an empty
prediction and the item is failed as "unparseable" — recorded, never guessed. The report gives the
accuracy of the samples' outputs before the job and of the job's own answers.
"""
from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.urls import reverse

from core.errors import ApplicationError
from core.images import inspect_image, media_path
from pipelines.jobs.kinds import ItemFailed, JobKindHandler, register
from pipelines.jobs.prompts import MODE_KINDS, prompt_current, prompt_save_version, render_prompt
from pipelines.llm.client import image_data_url
from pipelines.models import Job, JobKind, PromptTemplate
from review.models import Category, Dataset, Reasoning, Sample
from review.services import ModelOutput, reasonings_store

from .forms import ClassificationJobForm, RerunWrongLinkForm

CACHE_SECONDS = 60
# The start page the analysis pages link as `/jobs/new/?kind=classification_rerun_wrong&category=…&mode=…`.
RERUN_WRONG_START = "classification_rerun_wrong"


def resolve_dataset(value: Any) -> Dataset:
    """A dataset by id or name; ApplicationError if there is none."""
    if isinstance(value, Dataset):
        return value
    text = str(value or "").strip()
    if not text:
        raise ApplicationError("请选择数据集")
    dataset = Dataset.objects.filter(name=text).first()
    if dataset is None and text.isdigit():
        dataset = Dataset.objects.filter(pk=int(text)).first()
    if dataset is None:
        raise ApplicationError(f"数据集不存在：{text}")
    return dataset


def resolve_categories(dataset: Dataset, names: list[Any]) -> list[Category]:
    """The dataset's categories named (or given by id) in `names`; all unknown names are reported."""
    wanted = [str(n).strip() for n in names if str(n).strip()]
    found = {c.name: c for c in dataset.categories.filter(name__in=wanted)}
    by_id = {str(c.pk): c for c in dataset.categories.filter(pk__in=[w for w in wanted if w.isdigit()])}
    missing = [w for w in wanted if w not in found and w not in by_id]
    if missing:
        raise ApplicationError(f"数据集 {dataset.name} 中没有这些类别：{'、'.join(missing)}")
    return list({c.pk: c for c in (found.get(w) or by_id[w] for w in wanted)}.values())


def pinned_template(params: dict[str, Any], kind: str, *, missing: str) -> PromptTemplate:
    """The prompt template a job over samples runs with: the version `prompt_template_id` names (of
    `kind`; ApplicationError(missing) if there is none), else the newest version."""
    template_id = params.get("prompt_template_id")
    template = PromptTemplate.objects.filter(pk=template_id, kind=kind).first() if template_id else prompt_current(kind)
    if template is None:
        raise ApplicationError(missing)
    return template


def sample_job_params(params: dict[str, Any], *, dataset: Dataset, categories: list[Category],
                      template: PromptTemplate, **fields: Any) -> dict[str, Any]:
    """A job over a dataset's samples, its parameters cleaned: those given, with the dataset and classes
    as names and ids, `fields`, the pinned prompt version and the model (default: the vision model)."""
    cleaned = {k: v for k, v in params.items() if k not in ("dataset", "dataset_id", "categories")}
    cleaned.update({
        "dataset_id": dataset.pk,
        "dataset": dataset.name,
        "categories": [c.name for c in categories],
        "category_ids": [c.pk for c in categories],
        **fields,
        "prompt_template_id": template.pk,
        "prompt_version": template.version,
        "model": params.get("model") or settings.LLM_VISION_MODEL,
    })
    return cleaned


def image_message(prompt: str, image_relative_path: str) -> list[dict[str, Any]]:
    """A user message with the prompt and the sample's image as a data URL (confined to MEDIA_ROOT)."""
    if not image_relative_path:
        raise ItemFailed("missing", "样本没有图片")
    try:
        path = media_path(image_relative_path)
        inspect_image(path)
    except ApplicationError as exc:
        raise ItemFailed("missing", exc.message) from None
    return [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": image_data_url(path)}},
        {"type": "text", "text": prompt},
    ]}]


class PromptCache:
    """Rendered prompts and category names per job execution, re-read at most every CACHE_SECONDS.

    Entries are keyed by the execution (the job's lease token and creation time), never by ids
    alone: a dataset id can name another dataset later (ids are reused after a rollback on SQLite),
    and a new execution should see edited classes at once.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple, tuple[float, Any]] = {}

    def get(self, job: Job, name: str, build):
        key = (name, job.pk, job.created_at, job.lease_token)
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is None or now - entry[0] > CACHE_SECONDS:
            if len(self._entries) > 64:
                self._entries.clear()
            entry = (now, build())
            self._entries[key] = entry
        return entry[1]


def asks_for_reasoning(messages: list[dict[str, Any]]) -> bool:
    """Whether the prompt asks for a written reasoning (the answer format's `推理：` part)."""
    for message in messages:
        content = message.get("content")
        parts = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
        if any(isinstance(p, dict) and "推理" in str(p.get("text") or "") for p in parts):
            return True
    return False


def answer_with_reasoning(content: str, thinking: str | None, *, asked: bool) -> str:
    """The output to store: a thinking model's reasoning becomes the answer's reasoning when the
    prompt asked for one and the content holds only the class line.

    Thinking models (vLLM's reasoning parser, DashScope's thinking modes) return the reasoning in
    `reasoning_content` and may answer just "类别：换货". Stored as is, that 5-character mode-3 row
    would pass every length check and go into the training set without the reasoning it was asked
    for; with the reasoning in front it is reviewed like any other answer.
    """
    content = content or ""
    if not asked or not (thinking or "").strip():
        return content
    lines = [line for line in content.strip().splitlines() if line.strip()]
    if len(lines) > 1 or "推理" in content:
        return content  # the answer has its own reasoning; the thinking stays in raw_response
    return f"推理：{thinking.strip()}\n{content.strip()}"


def accuracy(*, sample_ids: list[int] | None = None, category: Category | None = None, mode: int,
             dataset_id: int | None = None, category_ids: list[int] | None = None) -> dict[str, Any]:
    """Correct / wrong / unparseable counts of the samples' current `mode` outputs, and the rate."""
    qs = Reasoning.objects.filter(mode=mode)
    if dataset_id is not None:
        qs = qs.filter(sample__dataset_id=dataset_id)
    if category_ids:
        qs = qs.filter(sample__label_id__in=category_ids)
    if sample_ids is not None:
        qs = qs.filter(sample_id__in=sample_ids)
    if category is not None:
        qs = qs.filter(sample__label=category)
    row = qs.aggregate(
        total=Count("id"),
        correct=Count("id", filter=Q(is_correct=True)),
        wrong=Count("id", filter=Q(is_correct=False)),
        unparseable=Count("id", filter=Q(is_correct__isnull=True)),
    )
    row["rate"] = round(row["correct"] / row["total"], 4) if row["total"] else None
    return row


ANSWER_TOKENS_KEPT = 64


def answer_line_logprobs(raw: Any) -> list[dict[str, Any]] | None:
    """The token log-probabilities of the answer's last line (where the class is named), from a
    response asked with `logprobs: true`; None when the server returned none. Only that line is
    kept: it is what the label-error ranking reads (review.suspicion), the rest would only fill the
    database."""
    choices = raw.get("choices") if isinstance(raw, dict) else None
    logprobs = choices[0].get("logprobs") if choices and isinstance(choices[0], dict) else None
    tokens = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(tokens, list) or not tokens:
        return None
    tokens = [{"token": t["token"], "logprob": t["logprob"]} for t in tokens
              if isinstance(t, dict) and isinstance(t.get("token"), str) and isinstance(t.get("logprob"), (int, float))]
    start = max(0, len(tokens) - ANSWER_TOKENS_KEPT)
    for i in range(len(tokens) - 1, start - 1, -1):
        if "\n" in tokens[i]["token"] and i < len(tokens) - 1:
            start = i + 1
            break
    return tokens[start:] or None


@register
class ClassificationHandler(JobKindHandler):
    kind = JobKind.CLASSIFICATION
    queue = "classification"
    form_class = ClassificationJobForm
    repinned_on_retry = ("prompt_template_id", "prompt_version")

    def __init__(self) -> None:
        self._cache = PromptCache()

    def start_url(self, start: str, query) -> str | None:
        """The re-run of a class's wrong samples (review/jobs/views.py), for the analysis pages' link."""
        target = RerunWrongLinkForm(query).target() if start == RERUN_WRONG_START else None
        if target is None:
            return None
        category_id, mode = target
        return f"{reverse('jobs:rerun_wrong', args=[category_id])}?mode={mode}"

    def clean_params(self, params: dict[str, Any]) -> dict[str, Any]:
        dataset = resolve_dataset(params.get("dataset") or params.get("dataset_id"))
        try:
            mode = int(params.get("mode"))
        except (TypeError, ValueError):
            mode = 0
        if mode not in MODE_KINDS:
            raise ApplicationError("模式必须是 1、2 或 3")
        categories = resolve_categories(dataset, list(params.get("categories") or []))
        template = pinned_template(params, MODE_KINDS[mode], missing="提示词版本与模式不符或不存在")
        cleaned = {k: v for k, v in params.items() if k not in ("dataset", "dataset_id", "categories")}
        cleaned.update({
            "dataset_id": dataset.pk,
            "dataset": dataset.name,
            "mode": mode,
            "categories": [c.name for c in categories],
            "category_ids": [c.pk for c in categories],
            "prompt_template_id": template.pk,
            "prompt_version": template.version,
            "model": params.get("model") or settings.LLM_VISION_MODEL,
            # Ask for token log-probabilities (servers that support them): the class name's
            # probability weighs the answer in the label-error ranking.
            "logprobs": bool(params.get("logprobs")),
        })
        if params.get("sample_ids") is not None:
            cleaned["sample_ids"] = [int(s) for s in params["sample_ids"]]
        if "accuracy_before" not in cleaned:  # the job report compares its answers with these
            cleaned["accuracy_before"] = accuracy(mode=mode, dataset_id=dataset.pk, category_ids=cleaned["category_ids"],
                                                  sample_ids=cleaned.get("sample_ids"))
        return cleaned

    def item_keys(self, job: Job):
        qs = Sample.objects.filter(dataset_id=job.params["dataset_id"])
        if job.params.get("category_ids"):
            qs = qs.filter(label_id__in=job.params["category_ids"])
        if job.params.get("sample_ids") is not None:
            qs = qs.filter(pk__in=job.params["sample_ids"])
        return (str(pk) for pk in qs.order_by("label__position", "label_id", "external_id").values_list("pk", flat=True))

    def _categories(self, dataset_id: int) -> list[Category]:
        return list(Category.objects.filter(dataset_id=dataset_id).order_by("position", "name"))

    def _prompt(self, job: Job) -> str:
        def build():
            template = PromptTemplate.objects.get(pk=job.params["prompt_template_id"])
            return render_prompt(template.text, categories=self._categories(job.params["dataset_id"]))

        return self._cache.get(job, "prompt", build)

    def prepare(self, job: Job, key: str) -> dict[str, Any]:
        sample = Sample.objects.filter(pk=key, dataset_id=job.params["dataset_id"]).values("id", "image", "label_id").first()
        if sample is None:
            raise ItemFailed("missing", "样本已不存在")
        return {"sample_id": sample["id"], "label_id": sample["label_id"],
                "messages": image_message(self._prompt(job), sample["image"])}

    def prepare_many(self, job: Job, keys: list[str]) -> dict[str, Any]:
        """`prepare` for a batch of items in one query."""
        samples = {str(s["id"]): s for s in Sample.objects.filter(pk__in=keys, dataset_id=job.params["dataset_id"])
                   .values("id", "image", "label_id")}
        prompt = self._prompt(job)
        payloads: dict[str, Any] = {}
        for key in keys:
            sample = samples.get(key)
            try:
                if sample is None:
                    raise ItemFailed("missing", "样本已不存在")
                payloads[key] = {"sample_id": sample["id"], "label_id": sample["label_id"],
                                 "messages": image_message(prompt, sample["image"])}
            except ItemFailed as exc:
                payloads[key] = exc
        return payloads

    async def call(self, llm, payload: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        # A truncated or empty answer raises LLMError here: the item fails and never reaches the
        # store, so it can never replace a stored output.
        result = await llm.chat(payload["messages"], model=params.get("model"), temperature=params.get("temperature"),
                                top_p=params.get("top_p"), max_tokens=params.get("max_tokens"),
                                extra={"logprobs": True} if params.get("logprobs") else None)
        raw = {k: result.raw.get(k) for k in ("id", "model", "usage") if k in result.raw}
        raw["finish_reason"] = result.finish_reason
        answer_tokens = answer_line_logprobs(result.raw)
        if answer_tokens:
            raw["logprobs"] = answer_tokens
        if result.reasoning:
            raw["reasoning_content"] = result.reasoning
        text = answer_with_reasoning(result.text, result.reasoning, asked=asks_for_reasoning(payload["messages"]))
        return {"text": text, "model": result.model, "raw": raw}

    def _store(self, job: Job, results: list[tuple[str, Any, Any]]) -> dict[str, Any]:
        """Store the answers as new reasoning versions (never over a reviewed one: see
        `review.services.reasonings_store`); an answer naming no class is kept and failed."""
        category_ids = self._cache.get(job, "names",
                                       lambda: {c.name: c.pk for c in self._categories(job.params["dataset_id"])})
        mode = job.params["mode"]
        outputs = [
            ModelOutput(sample_id=payload["sample_id"], label_id=payload["label_id"], mode=mode,
                        output=output["text"] or "", raw_response=output.get("raw"),
                        model_name=output.get("model") or job.params.get("model") or "",
                        prompt_template_id=job.params["prompt_template_id"])
            for _, payload, output in results
        ]
        stored = reasonings_store(outputs=outputs, category_ids=category_ids, source=f"job {job.pk}")
        outcomes: dict[str, Any] = {}
        for key, payload, _ in results:
            answer = stored.answers[(payload["sample_id"], mode)]
            if answer["predicted_category_id"] is None:
                outcomes[key] = ItemFailed("unparseable", "无法从回答中解析出类别（已保存原文）")
            else:
                outcomes[key] = {"predicted": answer["predicted_name"], "is_correct": answer["is_correct"]}
                if (payload["sample_id"], mode) in stored.pending_keys:
                    outcomes[key]["pending_review"] = True
        return outcomes

    def store(self, job: Job, key: str, payload: dict[str, Any], output: dict[str, Any]) -> dict[str, Any]:
        outcome = self._store(job, [(key, payload, output)])[key]
        if isinstance(outcome, ItemFailed):
            raise outcome
        return outcome

    def store_many(self, job: Job, results: list[tuple[str, Any, Any]]) -> dict[str, Any]:
        """`store` for a batch, in a few queries whatever its size."""
        return self._store(job, results)

    def finalize(self, job: Job) -> dict[str, Any]:
        mode = job.params["mode"]
        own = job_accuracy(job)
        report: dict[str, Any] = {
            "mode": mode,
            "dataset": job.params.get("dataset"),
            "prompt_template_id": job.params.get("prompt_template_id"),
            "prompt_version": job.params.get("prompt_version"),
            "model": job.params.get("model"),
            # This job's own answers; the samples' outputs before it ran.
            "accuracy": own,
            "accuracy_before": job.params.get("accuracy_before"),
            "pending_review": own["pending_review"],
        }
        rerun = job.params.get("rerun")
        if rerun:
            category = Category.objects.filter(pk=rerun["category_id"]).first()
            report["rerun"] = {
                "category": rerun.get("category"),
                "before": rerun.get("before"),
                # What the category shows now: answers on reviewed samples are not in it until
                # their reviewer accepts them (report["pending_review"]).
                "after": accuracy(category=category, mode=mode) if category else None,
                "samples": job.items_total,
                "fixed": own["correct"],
            }
        return report


def job_accuracy(job: Job) -> dict[str, Any]:
    """Correct / wrong / unparseable among this job's own answers (never rows of earlier runs),
    and how many wait for a reviewer because their sample was already reviewed."""
    row = job.items.aggregate(
        correct=Count("id", filter=Q(result__is_correct=True)),
        wrong=Count("id", filter=Q(result__is_correct=False)),
        unparseable=Count("id", filter=Q(error_kind="unparseable")),
        pending_review=Count("id", filter=Q(result__pending_review=True)),
    )
    row["total"] = row["correct"] + row["wrong"] + row["unparseable"]
    row["rate"] = round(row["correct"] / row["total"], 4) if row["total"] else None
    return row


@transaction.atomic
def classification_rerun_wrong(*, category: Category, mode: int, prompt_text: str, user) -> Job:
    """Re-run `mode` on the category's wrong (or unparseable) samples with an edited prompt.

    The edited prompt is saved as a new version of the mode's template; the job's report holds the
    category's accuracy in that mode before and after.
    """
    if mode not in MODE_KINDS:
        raise ApplicationError("模式必须是 1、2 或 3")
    sample_ids = list(
        Reasoning.objects.filter(sample__label=category, mode=mode)
        .filter(Q(is_correct=False) | Q(is_correct__isnull=True))
        .values_list("sample_id", flat=True)
    )
    if not sample_ids:
        raise ApplicationError(f"{category.name} 在模式{mode}下没有推理错误的样本")
    template = prompt_save_version(kind=MODE_KINDS[mode], text=prompt_text, note=f"重跑 {category.name} 的错误样本",
                                   user=user)
    before = accuracy(category=category, mode=mode)
    from pipelines.jobs.services import job_create

    return job_create(
        kind=JobKind.CLASSIFICATION,
        params={
            "dataset": category.dataset_id,
            "mode": mode,
            "sample_ids": sample_ids,
            "prompt_template_id": template.pk,
            "rerun": {"category_id": category.pk, "category": category.name, "before": before},
        },
        user=user,
    )
