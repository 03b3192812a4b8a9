"""Writes of model outputs: storing them without ever overwriting reviewed work (a new output of a
reviewed sample waits for its reviewer), and the reviewer's decision on the outputs that waited."""
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from core.bulk import insert_values, update_instances
from core.errors import ApplicationError
from review import counts, rules
from review.models import Cause, Mode, Reasoning, ReasoningVersion, Review, ReviewEdit, Sample
from review.permissions import can_change_category
from review.suspicion import suspicions_refresh

from .reviews import current_versions, review_snapshot


@dataclass
class ModelOutput:
    """One model answer for a sample in one mode, from an import or a classification job."""

    sample_id: int
    label_id: int
    mode: int
    output: str
    model_name: str = ""
    prompt_template_id: int | None = None
    raw_response: Any = None


@dataclass
class OutputsStoreResult:
    created: int = 0
    replaced: int = 0
    pending: int = 0
    unchanged: int = 0
    # (sample id, mode) → the derived fields of the stored answer (rules.answer_fields)
    answers: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    # the (sample id, mode) answers that wait for a reviewer
    pending_keys: set[tuple[int, int]] = field(default_factory=set)


# The modes a review judges: mode 2 by its cause, mode 3 as the training output.
JUDGED_MODES = (Mode.WITH_DEFINITIONS, Mode.LIMITED)
_ANSWER_COPY_FIELDS = ("output", "predicted_name", "predicted_category_id", "is_correct", "length", "model_name",
                       "prompt_template_id", "raw_response")


def _version_of(reasoning: Reasoning, *, version: int, status: str, source: str = "") -> ReasoningVersion:
    return ReasoningVersion(reasoning=reasoning, version=version, status=status, source=source,
                            **{f: getattr(reasoning, f) for f in _ANSWER_COPY_FIELDS})


def _answer_values(o: ModelOutput, answer: Mapping[str, Any]) -> dict[str, Any]:
    """A stored answer's columns: the output as given and its derived fields (`rules.answer_fields`)."""
    return {"output": o.output, "model_name": o.model_name, "prompt_template_id": o.prompt_template_id,
            "raw_response": o.raw_response, **answer}


def reasonings_create_counted(*, outputs: Sequence[tuple[ModelOutput, Mapping[str, Any]]], limit: int,
                              now: datetime) -> list[str]:
    """Create the first reasonings of samples created in the same transaction — (output, its
    `rules.answer_fields`), at most one per sample and mode — with their counted keys stored
    (`counts.reasoning_counted_key`), and return those keys for `counts.count_created`.

    Such a sample has no earlier output and no review, so there is nothing to version or to keep
    from being overwritten: `reasonings_store`'s reads would find nothing (an import's new
    samples are most of its outputs). `now`: their created_at and updated_at."""
    rows, keys = [], []
    for o, answer in outputs:
        key = counts.reasoning_counted_key(label_id=o.label_id, mode=o.mode, answer=answer, limit=limit)
        rows.append({"sample_id": o.sample_id, "mode": o.mode, "version": 1, **_answer_values(o, answer),
                     "counted_key": key})
        keys.append(key)
    insert_values(Reasoning, rows, now=now)
    return keys


@transaction.atomic
def reasonings_store(*, outputs: Sequence[ModelOutput], category_ids: Mapping[str, int], source: str = "",
                     refresh: bool = True) -> OutputsStoreResult:
    """Store model outputs without ever overwriting reviewed work.

    A sample's first output of a mode creates its Reasoning (version 1). A different output later
    becomes the next version: on a sample nobody reviewed — or in mode 1, which no review judges —
    it replaces the Reasoning at once and the old text is kept as a superseded ReasoningVersion;
    on a reviewed sample it waits as a pending ReasoningVersion (the sample page offers it with a
    diff) and pages, analysis and export keep using the version the review judged. The same text
    again changes nothing but its derived fields (the label may have changed). Batched: a few
    queries per call whatever its size. The samples' stored verdicts and the counters follow
    (review.counts), unless `refresh` is False because the caller refreshes them itself.
    """
    result = OutputsStoreResult()
    if not outputs:
        return result
    sample_ids = {o.sample_id for o in outputs}
    existing = {(r.sample_id, r.mode): r for r in Reasoning.objects.filter(sample_id__in=sample_ids)}
    reviewed = set(Review.objects.filter(sample_id__in=sample_ids).values_list("sample_id", flat=True))
    pending_rows = {(v.reasoning_id, v.version): v for v in ReasoningVersion.objects.filter(
        reasoning__in=[r.pk for r in existing.values() if r.pending_version], status=ReasoningVersion.Status.PENDING)}
    latest = dict(ReasoningVersion.objects.filter(reasoning__in=[r.pk for r in existing.values()])
                  .values("reasoning_id").annotate(n=Max("version")).values_list("reasoning_id", "n"))
    now = timezone.now()
    # New reasonings as rows ({attname: value}) rather than instances: an import makes one per sample and mode.
    create: dict[tuple[int, int], dict[str, Any]] = {}
    update, new_versions, superseded_pending = {}, [], []
    for o in outputs:
        answer = rules.answer_fields(o.output, label_id=o.label_id, category_ids=category_ids)
        values = _answer_values(o, answer)
        result.answers[(o.sample_id, o.mode)] = answer
        reasoning = existing.get((o.sample_id, o.mode))
        if reasoning is None:
            key = (o.sample_id, o.mode)
            if key in create and create[key]["output"] == o.output:
                result.unchanged += 1
                continue
            result.created += key not in create  # the same sample and mode again in one call: the last output is stored
            create[key] = {"sample_id": o.sample_id, "mode": o.mode, "version": 1, **values}
            continue
        pending = pending_rows.get((reasoning.pk, reasoning.pending_version))
        if reasoning.output == o.output or (pending is not None and pending.output == o.output):
            # Same text: nothing new to judge; keep its derived fields in step with the label.
            target = reasoning if reasoning.output == o.output else pending
            if target is pending:
                result.pending_keys.add((o.sample_id, o.mode))
            changed = {k: v for k, v in answer.items() if getattr(target, k) != v}
            if target is reasoning and changed:
                for key, value in changed.items():
                    setattr(reasoning, key, value)
                update[reasoning.pk] = reasoning
            result.unchanged += 1
            continue
        next_version = max(reasoning.version, reasoning.pending_version or 0, latest.get(reasoning.pk, 0)) + 1
        latest[reasoning.pk] = next_version
        if o.sample_id in reviewed and o.mode in JUDGED_MODES:
            if pending is not None:
                pending.status = ReasoningVersion.Status.SUPERSEDED
                superseded_pending.append(pending)
            waiting = ReasoningVersion(reasoning=reasoning, version=next_version, status=ReasoningVersion.Status.PENDING,
                                       source=source, **values)
            new_versions.append(waiting)
            pending_rows[(reasoning.pk, next_version)] = waiting
            reasoning.pending_version = next_version
            result.pending += 1
            result.pending_keys.add((o.sample_id, o.mode))
        else:
            new_versions.append(_version_of(reasoning, version=reasoning.version,
                                            status=ReasoningVersion.Status.SUPERSEDED))
            for key, value in values.items():
                setattr(reasoning, key, value)
            reasoning.version = next_version
            result.replaced += 1
        update[reasoning.pk] = reasoning
    insert_values(Reasoning, list(create.values()))
    for reasoning in update.values():
        reasoning.updated_at = now
    update_instances(update.values(), [*_ANSWER_COPY_FIELDS, "version", "pending_version", "updated_at"])
    ReasoningVersion.objects.bulk_update(superseded_pending, ["status"], batch_size=500)
    ReasoningVersion.objects.bulk_create(new_versions, batch_size=500)
    if refresh:
        counts.samples_refresh(sample_ids)
        suspicions_refresh(sample_ids=sample_ids)
    return result


@transaction.atomic
def reasoning_pending_decide(*, sample: Sample, user: AbstractBaseUser, accept: bool) -> Review | None:
    """Accept (or discard) the model outputs that arrived after the sample was reviewed.

    Accepting makes them the versions pages and the export use (the replaced ones are kept) and
    records on the review that its reviewer judged them: a cause stays only where it still
    applies (mode 2 now right → "none"; now wrong after "none" → undecided), a correction equal to
    the new output becomes "keep". Discarding keeps the reviewed versions. Either way the edit
    history says so.
    """
    if not can_change_category(user, sample.label_id):
        raise ApplicationError("你没有被分配这个类别，只能查看，不能修改。", code="forbidden")
    reasonings = list(Reasoning.objects.select_for_update().filter(sample=sample, pending_version__isnull=False))
    if not reasonings:
        raise ApplicationError("没有待确认的模型新结果（可能已被别人处理）。", code="conflict")
    waiting = {(v.reasoning_id, v.version): v for v in ReasoningVersion.objects.filter(
        reasoning__in=reasonings, status=ReasoningVersion.Status.PENDING)}
    for reasoning in reasonings:
        pending = waiting.get((reasoning.pk, reasoning.pending_version))
        reasoning.pending_version = None
        if pending is None:
            reasoning.save(update_fields=["pending_version", "updated_at"])
            continue
        if accept:
            _version_of(reasoning, version=reasoning.version, status=ReasoningVersion.Status.SUPERSEDED).save()
            for key in _ANSWER_COPY_FIELDS:
                setattr(reasoning, key, getattr(pending, key))
            reasoning.version = pending.version
            pending.delete()
        else:
            pending.status = ReasoningVersion.Status.DISCARDED
            pending.save(update_fields=["status"])
        reasoning.save()
    review = Review.objects.select_for_update(of=("self",)).select_related("reviewer", "suggested_label").filter(sample=sample).first()
    if review is None:
        return None
    before = review_snapshot(review)
    if accept:
        mode2_error = rules.sample_status(sample.pk).mode2_error
        if not mode2_error and review.cause in rules.CAUSE_CODES and review.cause != Cause.LABEL_WRONG:
            review.cause = Cause.NONE
        elif mode2_error and review.cause == Cause.NONE:
            review.cause = ""
        mode3 = Reasoning.objects.filter(sample=sample, mode=Mode.LIMITED).values_list("output", flat=True).first()
        if review.corrected_output and mode3 is not None and review.corrected_output == mode3.strip():
            review.corrected_output, review.corrected_category_id, review.corrected_length = "", None, 0
            review.correction_override = False
        review.judged_versions = current_versions(sample)
    review.reviewer = user
    review.version += 1
    review.save()
    after = review_snapshot(review)
    after["model_rerun"] = "采用" if accept else "未采用"
    ReviewEdit.objects.create(review=review, editor=user, version=review.version, before=before, after=after)
    return review
