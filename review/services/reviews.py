"""Writes of reviews: a reviewer's verdict (`review_save`, `review_keep`), a staff restore of an
earlier state, and the checks and history they share. Keyword-only, transactional, raising
ApplicationError ("forbidden" → 403, "conflict" → 409, "invalid" → 400)."""
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ApplicationError, conflict_error
from review import rules
from review.models import Category, Cause, CorrectionDraft, Mode, Reasoning, Review, ReviewEdit, Sample
from review.permissions import can_change_category


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


def current_versions(sample: Sample) -> dict[str, int]:
    """The version of each mode's reasoning now (what a review records as judged)."""
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
    review.judged_versions = current_versions(sample)
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
    review.judged_versions = current_versions(review.sample)
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
