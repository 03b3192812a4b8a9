"""Every write of the review application. Keyword-only, transactional, raising ApplicationError.

Codes raised (views map them to HTTP): "forbidden" → 403, "conflict" → 409, "invalid" → 400.

Stable interface used by other areas (the REST API calls `review_save` with the same arguments):

    review_save(*, sample, user, cause, corrected_output, label_error, suggested_label, note, version)
    review_restore(*, edit, user)
    assignment_set(*, category, reviewers, assigned_by)
    classification_records_save(*, dataset, records, categories=None)
"""
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from core.errors import ApplicationError, conflict_error

from review import counts, rules
from review.models import (
    Assignment,
    Category,
    Cause,
    CorrectionDraft,
    Dataset,
    Mode,
    Reasoning,
    ReasoningVersion,
    Review,
    ReviewEdit,
    Sample,
)
from review.parsing import match_category_name
from review.permissions import can_change_category
from review.suspicion import suspicions_refresh


# --------------------------------------------------------------------------- reviews
def review_snapshot(review: Review | None) -> dict[str, Any]:
    """The reviewer-editable fields of a review as JSON (what ReviewEdit.before/after store)."""
    if review is None:
        return {}
    return {
        "cause": review.cause,
        "corrected_output": review.corrected_output,
        "correction_override": review.correction_override,
        "label_error": review.label_error,
        "suggested_label": review.suggested_label_id,
        "suggested_label_name": review.suggested_label.name if review.suggested_label_id else "",
        "suggestion_uncertain": review.suggestion_uncertain,
        "note": review.note,
        "judged_versions": review.judged_versions,
        "reviewer": review.reviewer.get_username() if review.reviewer_id else "",
        "correction_draft": _draft_provenance(review),
    }


def _draft_provenance(review: Review) -> dict[str, Any] | None:
    """The drafted correction the review's correction started from, and whether it was changed."""
    draft = (CorrectionDraft.objects.filter(review=review, status=CorrectionDraft.Status.ACCEPTED)
             .values("pk", "edited").first()) if review.pk else None
    return {"id": draft["pk"], "edited": bool(draft["edited"])} if draft else None


def _record_draft_use(*, review: Review, corrected_output: str, draft: CorrectionDraft | None, user) -> None:
    """Provenance of the saved correction: the draft it started from is linked to the review as
    accepted, with whether the reviewer changed it; a correction of the reviewer's own (or none)
    unlinks a draft linked before (offered again when the correction was removed)."""
    linked = CorrectionDraft.objects.filter(review=review, status=CorrectionDraft.Status.ACCEPTED)
    if draft is not None and corrected_output:
        linked.exclude(pk=draft.pk).update(status=CorrectionDraft.Status.SUPERSEDED, review=None, edited=None)
        CorrectionDraft.objects.filter(pk=draft.pk).update(
            status=CorrectionDraft.Status.ACCEPTED, review=review, edited=corrected_output != reviewer_text(draft.text),
            decided_by=user, decided_at=timezone.now())
    elif corrected_output:
        linked.update(status=CorrectionDraft.Status.SUPERSEDED, review=None, edited=None)
    else:
        linked.update(status=CorrectionDraft.Status.OFFERED, review=None, edited=None, decided_by=None, decided_at=None)


def review_conflict(review: Review, version: int) -> ApplicationError:
    """The refusal of a save made on a stale version: who changed the review, and when."""
    last_edit = review.edits.select_related("editor").order_by("-version").first()
    who = last_edit.editor.get_username() if last_edit and last_edit.editor else "其他人"
    when = timezone.localtime(review.updated_at).strftime("%Y-%m-%d %H:%M:%S")
    return conflict_error(
        f"保存失败：{who} 已于 {when} 修改了这条审核（当前版本 {review.version}，你打开时是版本 {version}）。"
        "请查看最新内容和修改记录后再保存。",
        current_version=review.version, changed_by=who, changed_at=when,
    )


def implied_label_error(cause: str, label_error: bool) -> bool:
    """Cause (2) "label wrong" *is* a label error: it must reach trainset_error.md."""
    return bool(label_error) or cause == Cause.LABEL_WRONG


def reviewer_text(text: str | None) -> str:
    """Text typed by a reviewer as stored and compared: browsers post a textarea's line breaks as
    CRLF, model outputs use LF; surrounding whitespace is not content."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()


def _category_ids(dataset_id: int) -> dict[str, int]:
    return dict(Category.objects.filter(dataset_id=dataset_id).values_list("name", "pk"))


def correction_check(*, sample: Sample, text: str, label_error: bool = False,
                     suggested_label: Category | None = None) -> rules.CorrectionCheck:
    """`rules.check_correction` for a sample: the class expected is the label, or the suggested
    class when the label is flagged wrong (no class is expected when the reviewer is not sure)."""
    expected = suggested_label if label_error and suggested_label is not None else sample.label
    check = rules.check_correction(reviewer_text(text), expected_id=expected.pk, expected_name=expected.name,
                                   category_ids=_category_ids(sample.dataset_id))
    if label_error and suggested_label is None:
        check.problems = [p for p in check.problems if not p.startswith(("类别写的是", "读不出类别"))]
    return check


def _current_versions(sample: Sample) -> dict[str, int]:
    return {str(mode): version for mode, version in
            Reasoning.objects.filter(sample=sample).values_list("mode", "version")}


@transaction.atomic
def review_save(
    *,
    sample: Sample,
    user: AbstractBaseUser,
    cause: str,
    corrected_output: str,
    label_error: bool,
    suggested_label: Category | None,
    note: str,
    version: int,
    suggestion_uncertain: bool = False,
    correction_override: bool = False,
    correction_draft: CorrectionDraft | None = None,
) -> Review:
    """Save a reviewer's verdict on `sample` and record the change in the edit history.

    `version` is the review version the user saw (0 when the sample had no review yet); if someone
    saved in between, raise code="conflict" naming who and when, and change nothing. Only users
    who may change the sample's label category may save (code="forbidden"). Refused with
    code="invalid", changing nothing:
    - `cause` not a `Cause` value or "" (not decided), or "none" on a sample whose mode 2 is wrong
      or unparseable (rules.MODE2_ERROR);
    - a label error (`label_error`, implied by cause (2)) without `suggested_label` (another class
      of the same dataset) or `suggestion_uncertain` (不确定);
    - a `corrected_output` failing `rules.check_correction` (class line, length), unless
      `correction_override` with a `note` saying why — the export still leaves such a row out.
    `corrected_output` equal to the mode-3 output (or blank) means "keep the model's output" and
    is stored as "". The review records the reasoning versions it judged. Saving the values
    already saved is a no-op (no new version), even with a stale `version` (a double submit).
    `correction_draft` (a CorrectionDraft of this sample) says the correction started from that
    drafted correction: the review and its edit history record it, and whether the text was changed.
    """
    if not can_change_category(user, sample.label_id):
        raise ApplicationError("你没有被分配这个类别，只能查看，不能修改。", code="forbidden")
    if cause not in Cause.values and cause != "":
        raise ApplicationError(f"未知的错误原因：{cause}", code="invalid")
    if correction_draft is not None and correction_draft.sample_id != sample.pk:
        raise ApplicationError("修正草稿不属于这条样本。", code="invalid")
    if cause == Cause.NONE and rules.sample_status(sample.pk).mode2_error:
        raise ApplicationError("模式2推理错误：原因不能是“无错误”，请选择 (1)/(2)/(3)。", code="invalid")
    label_error = implied_label_error(cause, label_error)
    if not label_error:
        suggested_label, suggestion_uncertain = None, False
    if suggested_label is not None:
        suggestion_uncertain = False
        if suggested_label.dataset_id != sample.dataset_id:
            raise ApplicationError("建议类别必须属于同一数据集。", code="invalid")
        if suggested_label.pk == sample.label_id:
            raise ApplicationError("建议类别与当前标签相同。", code="invalid")
    elif label_error and not suggestion_uncertain:
        raise ApplicationError("标签错误需要建议类别：选择正确的类别，或选“不确定”。", code="invalid")
    corrected_output = reviewer_text(corrected_output)
    if corrected_output:
        mode3 = Reasoning.objects.filter(sample=sample, mode=Mode.LIMITED).values_list("output", flat=True).first()
        if mode3 is not None and corrected_output == reviewer_text(mode3):
            corrected_output = ""
    note = reviewer_text(note)
    check = None
    if corrected_output:
        check = correction_check(sample=sample, text=corrected_output, label_error=label_error,
                                 suggested_label=suggested_label)
        if check.ok:
            correction_override = False
        elif not correction_override:
            raise ApplicationError("修正未通过检查：" + "".join(check.problems)
                                   + "（确需保存请勾选“仍然保存”并在备注中说明原因；导出时不会包含这一条。）",
                                   code="invalid")
        elif not note:
            raise ApplicationError("仍然保存未通过检查的修正时，请在备注中说明原因。", code="invalid")
    else:
        correction_override = False

    review = (
        Review.objects.select_for_update(of=("self",)).select_related("reviewer", "suggested_label").filter(sample=sample).first()
    )
    current_version = review.version if review else 0
    same_values = review is not None and (
        review.cause == cause
        and review.corrected_output == corrected_output
        and review.correction_override == bool(correction_override)
        and review.label_error == bool(label_error)
        and review.suggested_label_id == (suggested_label.pk if suggested_label else None)
        and review.suggestion_uncertain == bool(suggestion_uncertain)
        and review.note == note
        and (correction_draft is None or not corrected_output
             or (_draft_provenance(review) or {}).get("id") == correction_draft.pk)
    )
    if int(version) != current_version:
        if review is None:
            raise ApplicationError("保存失败：版本号无效，请刷新页面。", code="conflict")
        if same_values:
            return review  # a repeated submit of what is already saved overwrites nothing
        raise review_conflict(review, int(version))

    before = review_snapshot(review)
    if review is None:
        try:
            with transaction.atomic():
                review = Review.objects.create(sample=sample, reviewer=user, version=0)
        except IntegrityError:
            # Someone created the review between our read and our insert.
            review = Review.objects.select_for_update().get(sample=sample)
            raise review_conflict(review, int(version)) from None
    elif same_values:
        return review

    review.reviewer = user
    review.cause = cause
    review.corrected_output = corrected_output
    review.corrected_category_id = check.predicted_category_id if check else None
    review.corrected_length = check.length if check else 0
    review.correction_override = bool(correction_override)
    review.label_error = bool(label_error)
    review.suggested_label = suggested_label
    review.suggestion_uncertain = bool(suggestion_uncertain)
    review.note = note
    review.judged_versions = _current_versions(sample)
    review.version = current_version + 1
    review.save()
    _record_draft_use(review=review, corrected_output=corrected_output, draft=correction_draft, user=user)
    ReviewEdit.objects.create(
        review=review, editor=user, version=review.version, before=before, after=review_snapshot(review)
    )
    return review


def review_keep(*, sample: Sample, user: AbstractBaseUser, version: int, shown_output: str | None = None,
                note: str = "") -> Review:
    """"Correct, keep" (the `y` key): mode 2 right, the model's mode-3 output goes to the training set
    as it is. Refused (code="invalid") unless the rules say the sample is keepable, or when
    `shown_output` (the text in the reviewer's edit box) differs from the model's output — an
    edit is never thrown away by "keep"."""
    status = rules.sample_status(sample.pk)
    if not status.keepable:
        raise ApplicationError("不能“正确，保留”：" + "；".join(status.keep_blockers()) + "。", code="invalid")
    if shown_output is not None:
        mode3 = Reasoning.objects.filter(sample=sample, mode=Mode.LIMITED).values_list("output", flat=True).first()
        if reviewer_text(shown_output) != reviewer_text(mode3):
            raise ApplicationError("你修改了模式3输出：按 Enter 保存修改，或先“恢复为模型原输出”再按 y。",
                                   code="invalid")
    return review_save(sample=sample, user=user, cause=Cause.NONE, corrected_output="", label_error=False,
                       suggested_label=None, note=note, version=version)


@transaction.atomic
def review_restore(*, edit: ReviewEdit, user: AbstractBaseUser) -> Review:
    """Restore the review to the state right after `edit` (staff only); recorded as a new edit.

    The restored correction is checked again (its class and length are what the export compares)."""
    if not (user.is_authenticated and user.is_staff):
        raise ApplicationError("只有管理员可以恢复历史版本。", code="forbidden")
    review = Review.objects.select_for_update(of=("self",)).select_related("reviewer", "suggested_label", "sample__label").get(pk=edit.review_id)
    state = edit.after or {}
    suggested = None
    if state.get("suggested_label"):
        suggested = Category.objects.filter(pk=state["suggested_label"], dataset_id=review.sample.dataset_id).first()
    before = review_snapshot(review)
    review.reviewer = user
    review.cause = state.get("cause", "")
    review.corrected_output = state.get("corrected_output", "")
    review.label_error = implied_label_error(review.cause, state.get("label_error", False))
    review.suggested_label = suggested
    review.suggestion_uncertain = review.label_error and suggested is None
    review.note = state.get("note", "")
    check = None
    if review.corrected_output:
        check = correction_check(sample=review.sample, text=review.corrected_output, label_error=review.label_error,
                                 suggested_label=suggested)
    review.corrected_category_id = check.predicted_category_id if check else None
    review.corrected_length = check.length if check else 0
    review.correction_override = bool(check and not check.ok)
    review.judged_versions = _current_versions(review.sample)
    review.version += 1
    review.save()
    ReviewEdit.objects.create(
        review=review,
        editor=user,
        version=review.version,
        before=before,
        after=review_snapshot(review),
        restored_from=edit,
    )
    return review


# --------------------------------------------------------------------------- assignments
@transaction.atomic
def assignment_set(
    *, category: Category, reviewers: Iterable[AbstractBaseUser], assigned_by: AbstractBaseUser
) -> list[Assignment]:
    """Make `reviewers` exactly the set of people assigned to `category` (staff only)."""
    if not (assigned_by.is_authenticated and assigned_by.is_staff):
        raise ApplicationError("只有管理员可以分配类别。", code="forbidden")
    wanted = {user.pk: user for user in reviewers}
    Assignment.objects.filter(category=category).exclude(reviewer_id__in=wanted).delete()
    existing = set(Assignment.objects.filter(category=category).values_list("reviewer_id", flat=True))
    Assignment.objects.bulk_create(
        [Assignment(category=category, reviewer=user, assigned_by=assigned_by) for pk, user in wanted.items()
         if pk not in existing]
    )
    return list(Assignment.objects.filter(category=category).select_related("reviewer"))


@transaction.atomic
def assignments_add(
    *, reviewer: AbstractBaseUser, categories: Iterable[Category], assigned_by: AbstractBaseUser | None
) -> int:
    """Give `reviewer` the `categories` (keeping other assignments); returns how many were new.

    `assigned_by` None means an operator at the command line; a user must be staff.
    """
    if assigned_by is not None and not (assigned_by.is_authenticated and assigned_by.is_staff):
        raise ApplicationError("只有管理员可以分配类别。", code="forbidden")
    existing = set(Assignment.objects.filter(reviewer=reviewer).values_list("category_id", flat=True))
    new = [Assignment(reviewer=reviewer, category=c, assigned_by=assigned_by) for c in categories if c.pk not in existing]
    Assignment.objects.bulk_create(new)
    return len(new)


@transaction.atomic
def assignments_set_for_dataset(
    *,
    dataset: Dataset,
    reviewer_ids_by_category: Mapping[int, Iterable[int]],
    assigned_by: AbstractBaseUser,
) -> int:
    """Replace the assignments of every category of `dataset` at once; returns how many exist after."""
    from django.contrib.auth import get_user_model

    if not (assigned_by.is_authenticated and assigned_by.is_staff):
        raise ApplicationError("只有管理员可以分配类别。", code="forbidden")
    users = {u.pk: u for u in get_user_model().objects.filter(is_active=True)}
    for category in dataset.categories.all():
        ids = reviewer_ids_by_category.get(category.pk, ())
        assignment_set(category=category, reviewers=[users[i] for i in ids if i in users], assigned_by=assigned_by)
    return Assignment.objects.filter(category__dataset=dataset).count()


# --------------------------------------------------------------------------- model outputs
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
    create, update, new_versions, superseded_pending = [], {}, [], []
    for o in outputs:
        answer = rules.answer_fields(o.output, label_id=o.label_id, category_ids=category_ids)
        values = {"output": o.output, "model_name": o.model_name, "prompt_template_id": o.prompt_template_id,
                  "raw_response": o.raw_response, **answer}
        result.answers[(o.sample_id, o.mode)] = answer
        reasoning = existing.get((o.sample_id, o.mode))
        if reasoning is None:
            reasoning = Reasoning(sample_id=o.sample_id, mode=o.mode, version=1, **values)
            existing[(o.sample_id, o.mode)] = reasoning
            create.append(reasoning)
            result.created += 1
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
    Reasoning.objects.bulk_create(create, batch_size=500)
    for reasoning in update.values():
        reasoning.updated_at = now
    Reasoning.objects.bulk_update(list(update.values()), [*_ANSWER_COPY_FIELDS, "version", "pending_version", "updated_at"],
                                  batch_size=500)
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
        review.judged_versions = _current_versions(sample)
    review.reviewer = user
    review.version += 1
    review.save()
    after = review_snapshot(review)
    after["model_rerun"] = "采用" if accept else "未采用"
    ReviewEdit.objects.create(review=review, editor=user, version=review.version, before=before, after=after)
    return review


# --------------------------------------------------------------------------- import
@dataclass
class ClassificationRecord:
    """One sample as an importer or the demo hands it over (images already inside MEDIA_ROOT).

    `outputs` maps mode (1, 2, 3) to the model's output text; modes absent are left as they are.
    A field the record lacks (`image` "", `image_info`/`description` None) keeps what is stored;
    `provenance` is merged key by key into the stored one.
    """

    external_id: str
    label: str
    image: str = ""
    outputs: dict[int, str] = field(default_factory=dict)
    model_names: dict[int, str] = field(default_factory=dict)
    image_info: Any = None
    raw_responses: dict[int, Any] = field(default_factory=dict)
    description: str | None = None
    provenance: dict[str, Any] | None = None


@dataclass
class RecordsSaveResult:
    categories_created: int = 0
    samples_created: int = 0
    samples_updated: int = 0
    reasonings_created: int = 0
    reasonings_updated: int = 0
    # new outputs of reviewed samples, waiting for their reviewer (never overwriting the review)
    reasonings_pending: int = 0


@transaction.atomic
def category_ensure(*, dataset: Dataset, definitions: Sequence[tuple[str, str]]) -> tuple[dict[str, Category], int]:
    """Create the named categories that are missing and fill in empty official definitions.

    Returns the dataset's categories by name and how many were created. Existing definitions are
    overwritten only when a new non-empty definition is given.
    """
    existing = {c.name: c for c in dataset.categories.all()}
    created = 0
    next_position = max((c.position for c in existing.values()), default=-1) + 1
    for name, definition in definitions:
        category = existing.get(name)
        if category is None:
            existing[name] = Category.objects.create(
                dataset=dataset, name=name, definition=definition or "", position=next_position
            )
            next_position += 1
            created += 1
        elif definition and category.definition != definition:
            category.definition = definition
            category.save(update_fields=["definition"])
    return existing, created


def resolve_label_name(name: str, known_names: Sequence[str]) -> str:
    """The known category a (possibly shortened) label denotes, else the label itself."""
    name = name.strip()
    if name in known_names:
        return name
    return match_category_name(name, known_names) or name


@transaction.atomic
def classification_records_save(
    *,
    dataset: Dataset,
    records: Sequence[ClassificationRecord],
    categories: Sequence[tuple[str, str]] | None = None,
) -> RecordsSaveResult:
    """Create or update samples and their reasonings in place (keyed by dataset + external id).

    Labels that name no existing category create one (shortened names such as a class folder
    without its parenthesised part map onto the full name). Reviews are never touched. A sample's
    other reasonings get their right/wrong mark recomputed when its label changes.
    """
    result = RecordsSaveResult()
    by_name, result.categories_created = category_ensure(dataset=dataset, definitions=list(categories or ()))
    names = list(by_name)
    wanted_new = []
    for record in records:
        label_name = resolve_label_name(record.label, names)
        if label_name not in by_name:
            wanted_new.append((label_name, ""))
            names.append(label_name)
    if wanted_new:
        by_name, created = category_ensure(dataset=dataset, definitions=wanted_new)
        result.categories_created += created
        names = list(by_name)

    for start in range(0, len(records), IMPORT_CHUNK):
        _save_records_chunk(dataset=dataset, records=records[start:start + IMPORT_CHUNK], by_name=by_name,
                            names=names, result=result)
    return result


IMPORT_CHUNK = 500  # keeps IN (...) lists under SQLite's variable limit
SAMPLE_IMPORT_FIELDS = ("label", "image", "image_info", "description", "provenance")


def _sample_values(sample: Sample, record: ClassificationRecord, label: Category) -> dict[str, Any]:
    """The stored sample's fields after `record`: what the record lacks keeps what is stored
    (re-importing a mode folder must not wipe images or descriptions another file gave)."""
    provenance = sample.provenance
    if record.provenance:
        provenance = {**(sample.provenance or {}), **record.provenance}
    return {
        "label_id": label.pk,
        "image": record.image or sample.image,
        "image_info": sample.image_info if record.image_info is None else record.image_info,
        "description": sample.description if record.description is None else record.description,
        "provenance": provenance,
    }


def _save_records_chunk(*, dataset: Dataset, records: Sequence[ClassificationRecord], by_name: dict[str, Category],
                        names: list[str], result: RecordsSaveResult) -> None:
    samples = {s.external_id: s for s in Sample.objects.filter(dataset=dataset, external_id__in=[r.external_id for r in records])}
    to_update_samples, new_samples = [], []
    for record in records:
        label = by_name[resolve_label_name(record.label, names)]
        sample = samples.get(record.external_id)
        if sample is None:
            sample = Sample(dataset=dataset, external_id=record.external_id, label=label, image=record.image,
                            image_info=record.image_info, description=record.description or "",
                            provenance=record.provenance)
            new_samples.append(sample)
            samples[record.external_id] = sample
            continue
        values = _sample_values(sample, record, label)
        if any(getattr(sample, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(sample, key, value)
            to_update_samples.append(sample)
    Sample.objects.bulk_create(new_samples, batch_size=500)
    now = timezone.now()
    for sample in to_update_samples:
        sample.updated_at = now
    Sample.objects.bulk_update(to_update_samples, [*SAMPLE_IMPORT_FIELDS, "updated_at"], batch_size=500)
    result.samples_created += len(new_samples)
    result.samples_updated += len(to_update_samples)
    if new_samples and new_samples[0].pk is None:  # backends that return no ids from bulk_create
        fresh = Sample.objects.filter(dataset=dataset, external_id__in=[s.external_id for s in new_samples])
        samples.update({s.external_id: s for s in fresh})

    category_ids = {name: category.pk for name, category in by_name.items()}
    outputs = [
        ModelOutput(sample_id=samples[record.external_id].pk, label_id=samples[record.external_id].label_id,
                    mode=mode, output=output, model_name=record.model_names.get(mode, ""),
                    raw_response=record.raw_responses.get(mode))
        for record in records for mode, output in sorted(record.outputs.items())
    ]
    stored = reasonings_store(outputs=outputs, category_ids=category_ids, source="import", refresh=False)
    # A sample whose label changed: its other reasonings are re-marked right/wrong.
    relabelled = [s.pk for s in to_update_samples]
    remark = []
    for reasoning in Reasoning.objects.filter(sample_id__in=relabelled).select_related("sample"):
        if (reasoning.sample_id, reasoning.mode) in stored.answers:
            continue
        is_correct = None if reasoning.predicted_category_id is None else reasoning.predicted_category_id == reasoning.sample.label_id
        if reasoning.is_correct != is_correct:
            reasoning.is_correct, reasoning.updated_at = is_correct, now
            remark.append(reasoning)
    Reasoning.objects.bulk_update(remark, ["is_correct", "updated_at"], batch_size=500)
    counts.samples_refresh(s.pk for s in samples.values())
    suspicions_refresh(sample_ids=[s.pk for s in samples.values()])
    result.reasonings_created += stored.created
    result.reasonings_updated += stored.replaced + stored.pending + len(remark)
    result.reasonings_pending += stored.pending
