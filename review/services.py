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
from django.utils import timezone

from .errors import ApplicationError
from .models import Assignment, Category, Cause, Dataset, Mode, Reasoning, Review, ReviewEdit, Sample
from .parsing import match_category_name, parse_predicted_category, text_length
from .permissions import can_change_category

REVIEW_FIELDS = ("cause", "corrected_output", "label_error", "suggested_label", "note")


# --------------------------------------------------------------------------- reviews
def review_snapshot(review: Review | None) -> dict[str, Any]:
    """The reviewer-editable fields of a review as JSON (what ReviewEdit.before/after store)."""
    if review is None:
        return {}
    return {
        "cause": review.cause,
        "corrected_output": review.corrected_output,
        "label_error": review.label_error,
        "suggested_label": review.suggested_label_id,
        "suggested_label_name": review.suggested_label.name if review.suggested_label_id else "",
        "note": review.note,
        "reviewer": review.reviewer.get_username() if review.reviewer_id else "",
    }


def _conflict(review: Review, version: int) -> ApplicationError:
    last_edit = review.edits.select_related("editor").order_by("-version").first()
    who = last_edit.editor.get_username() if last_edit and last_edit.editor else "其他人"
    when = timezone.localtime(review.updated_at).strftime("%Y-%m-%d %H:%M:%S")
    return ApplicationError(
        f"保存失败：{who} 已于 {when} 修改了这条审核（当前版本 {review.version}，你打开时是版本 {version}）。"
        "请查看最新内容和修改记录后再保存。",
        code="conflict",
        extra={"current_version": review.version, "changed_by": who, "changed_at": when},
    )


def implied_label_error(cause: str, label_error: bool) -> bool:
    """Cause (2) "label wrong" *is* a label error: it must reach trainset_error.md."""
    return bool(label_error) or cause == Cause.LABEL_WRONG


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
) -> Review:
    """Save a reviewer's verdict on `sample` and record the change in the edit history.

    `version` is the review version the user saw (0 when the sample had no review yet); if someone
    saved in between, raise code="conflict" naming who and when, and change nothing. Only users
    who may change the sample's label category may save (code="forbidden"). `cause` is one of
    `Cause` values or "" (not decided). `corrected_output` equal to the mode-3 output (or blank)
    means "keep the model's output" and is stored as "". Cause (2) "label wrong" sets
    `label_error`. `suggested_label` is kept only with
    `label_error` and must be another category of the same dataset. Saving the values already
    saved is a no-op (no new version), even with a stale `version` (a double submit).
    """
    if not can_change_category(user, sample.label_id):
        raise ApplicationError("你没有被分配这个类别，只能查看，不能修改。", code="forbidden")
    if cause not in Cause.values and cause != "":
        raise ApplicationError(f"未知的错误原因：{cause}", code="invalid")
    label_error = implied_label_error(cause, label_error)
    if not label_error:
        suggested_label = None
    if suggested_label is not None:
        if suggested_label.dataset_id != sample.dataset_id:
            raise ApplicationError("建议类别必须属于同一数据集。", code="invalid")
        if suggested_label.pk == sample.label_id:
            raise ApplicationError("建议类别与当前标签相同。", code="invalid")
    corrected_output = (corrected_output or "").strip()
    if corrected_output:
        mode3 = Reasoning.objects.filter(sample=sample, mode=Mode.LIMITED).values_list("output", flat=True).first()
        if mode3 is not None and corrected_output == mode3.strip():
            corrected_output = ""
    note = (note or "").strip()

    review = (
        Review.objects.select_for_update(of=("self",)).select_related("reviewer", "suggested_label").filter(sample=sample).first()
    )
    current_version = review.version if review else 0
    same_values = review is not None and (
        review.cause == cause
        and review.corrected_output == corrected_output
        and review.label_error == bool(label_error)
        and review.suggested_label_id == (suggested_label.pk if suggested_label else None)
        and review.note == note
    )
    if int(version) != current_version:
        if review is None:
            raise ApplicationError("保存失败：版本号无效，请刷新页面。", code="conflict")
        if same_values:
            return review  # a repeated submit of what is already saved overwrites nothing
        raise _conflict(review, int(version))

    before = review_snapshot(review)
    if review is None:
        try:
            with transaction.atomic():
                review = Review.objects.create(sample=sample, reviewer=user, version=0)
        except IntegrityError:
            # Someone created the review between our read and our insert.
            review = Review.objects.select_for_update().get(sample=sample)
            raise _conflict(review, int(version)) from None
    elif same_values:
        return review

    review.reviewer = user
    review.cause = cause
    review.corrected_output = corrected_output
    review.label_error = bool(label_error)
    review.suggested_label = suggested_label
    review.note = note
    review.version = current_version + 1
    review.save()
    ReviewEdit.objects.create(
        review=review, editor=user, version=review.version, before=before, after=review_snapshot(review)
    )
    return review


@transaction.atomic
def review_restore(*, edit: ReviewEdit, user: AbstractBaseUser) -> Review:
    """Restore the review to the state right after `edit` (staff only); recorded as a new edit."""
    if not (user.is_authenticated and user.is_staff):
        raise ApplicationError("只有管理员可以恢复历史版本。", code="forbidden")
    review = Review.objects.select_for_update(of=("self",)).select_related("reviewer", "suggested_label").get(pk=edit.review_id)
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
    review.note = state.get("note", "")
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


def _reasoning_values(output: str, label_id: int, by_name: Mapping[str, Category]) -> dict[str, Any]:
    predicted_name = parse_predicted_category(output, list(by_name)) or ""
    predicted = by_name.get(predicted_name)
    return {
        "output": output,
        "predicted_name": predicted_name,
        "predicted_category_id": predicted.pk if predicted else None,
        "is_correct": None if predicted is None else predicted.pk == label_id,
        "length": text_length(output),
    }


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
    reasonings = {
        (r.sample_id, r.mode): r
        for r in Reasoning.objects.filter(sample__in=[s.pk for s in samples.values()])
    }
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

    create, update = [], []
    fields = ["output", "predicted_name", "predicted_category", "is_correct", "length", "model_name",
              "raw_response", "updated_at"]
    for record in records:
        sample = samples[record.external_id]
        for mode in (1, 2, 3):
            existing = reasonings.get((sample.pk, mode))
            if mode in record.outputs:
                values = _reasoning_values(record.outputs[mode], sample.label_id, by_name)
                values["model_name"] = record.model_names.get(mode, existing.model_name if existing else "")
                values["raw_response"] = record.raw_responses.get(mode, existing.raw_response if existing else None)
                if existing is None:
                    create.append(Reasoning(sample=sample, mode=mode, **values))
                    continue
            elif existing is not None:
                # Output unchanged; the label may have changed, so re-mark right/wrong.
                values = {"is_correct": None if existing.predicted_category_id is None
                          else existing.predicted_category_id == sample.label_id}
            else:
                continue
            changed = any(getattr(existing, k) != v for k, v in values.items())
            if changed:
                for key, value in values.items():
                    setattr(existing, key, value)
                existing.updated_at = now
                update.append(existing)
    Reasoning.objects.bulk_create(create, batch_size=500)
    Reasoning.objects.bulk_update(update, fields, batch_size=500)
    result.reasonings_created += len(create)
    result.reasonings_updated += len(update)
