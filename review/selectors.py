"""Every non-trivial read of the review application, shaped so query counts stay flat."""
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, FilteredRelation, Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404

from .models import Assignment, Category, Dataset, Mode, Reasoning, ReviewEdit, Sample

# The mode-3 prompt asks for at most 100 characters; one configured value for every page and export.
LONG_OUTPUT_LIMIT = settings.TRAINSET_MAX_LENGTH

# Queue filters: key → (Chinese label, condition on the annotated sample queryset).
QUEUE_FILTERS: dict[str, tuple[str, Q]] = {
    "all": ("全部", Q()),
    "mode2_wrong": ("模式2 错误", Q(r2__is_correct=False)),
    "mode3_wrong": ("模式3 错误", Q(r3__is_correct=False)),
    "mode3_long": (f"模式3 超 {LONG_OUTPUT_LIMIT} 字", Q(r3__length__gt=LONG_OUTPUT_LIMIT)),
    "unreviewed": ("未审核", Q(review__isnull=True)),
    "flagged": ("标签错误", Q(review__label_error=True)),
}
QUEUE_SORTS: dict[str, tuple[str, tuple]] = {
    "id": ("按编号", ("external_id",)),
    "mode2_wrong_first": ("模式2 错误优先", (F("mode2_correct").asc(nulls_last=True), "external_id")),
    "mode3_longest": ("模式3 最长优先", (F("mode3_length").desc(nulls_last=True), "external_id")),
    "recently_reviewed": ("最近审核", (F("review__updated_at").desc(nulls_last=True), "external_id")),
}
DEFAULT_FILTER, DEFAULT_SORT = "all", "id"


def _with_modes(queryset: QuerySet[Sample]) -> QuerySet[Sample]:
    """Join each sample's mode-2 and mode-3 reasoning once (unique per sample: no duplication)."""
    return queryset.annotate(
        r2=FilteredRelation("reasonings", condition=Q(reasonings__mode=Mode.WITH_DEFINITIONS)),
        r3=FilteredRelation("reasonings", condition=Q(reasonings__mode=Mode.LIMITED)),
    )


# --------------------------------------------------------------------------- progress
@dataclass
class CategoryProgress:
    category: Category
    total: int = 0
    reviewed: int = 0
    mode2_wrong: int = 0
    mode2_wrong_reviewed: int = 0
    label_flagged: int = 0
    reviewers: list = field(default_factory=list)
    can_change: bool = False

    @property
    def percent(self) -> int:
        return round(100 * self.reviewed / self.total) if self.total else 0

    @property
    def mode2_percent(self) -> int:
        return round(100 * self.mode2_wrong_reviewed / self.mode2_wrong) if self.mode2_wrong else 100


def category_progress(*, dataset: Dataset, categories: list[Category] | None = None) -> list[CategoryProgress]:
    """Progress of every category of `dataset` (or just `categories`), with assigned reviewers.

    Three queries whatever the number of categories, samples or reviews.
    """
    if categories is None:
        categories = list(dataset.categories.all())
    stats = (
        _with_modes(Sample.objects.filter(label__in=[c.pk for c in categories]))
        .order_by()
        .values("label_id")
        .annotate(
            total=Count("pk"),
            reviewed=Count("review"),
            mode2_wrong=Count("pk", filter=Q(r2__is_correct=False)),
            mode2_wrong_reviewed=Count("pk", filter=Q(r2__is_correct=False, review__isnull=False)),
            label_flagged=Count("pk", filter=Q(review__label_error=True)),
        )
    )
    by_label = {row["label_id"]: row for row in stats}
    reviewers: dict[int, list] = {}
    for assignment in Assignment.objects.filter(category__in=[c.pk for c in categories]).select_related("reviewer"):
        reviewers.setdefault(assignment.category_id, []).append(assignment.reviewer)
    result = []
    for category in categories:
        row = by_label.get(category.pk, {})
        result.append(CategoryProgress(
            category=category,
            total=row.get("total", 0),
            reviewed=row.get("reviewed", 0),
            mode2_wrong=row.get("mode2_wrong", 0),
            mode2_wrong_reviewed=row.get("mode2_wrong_reviewed", 0),
            label_flagged=row.get("label_flagged", 0),
            reviewers=sorted(reviewers.get(category.pk, []), key=lambda u: u.get_username()),
        ))
    return result


@dataclass
class ReviewerProgress:
    reviewer: AbstractBaseUser
    categories: list[CategoryProgress]

    @property
    def total(self) -> int:
        return sum(c.total for c in self.categories)

    @property
    def reviewed(self) -> int:
        return sum(c.reviewed for c in self.categories)

    @property
    def mode2_wrong(self) -> int:
        return sum(c.mode2_wrong for c in self.categories)

    @property
    def mode2_wrong_reviewed(self) -> int:
        return sum(c.mode2_wrong_reviewed for c in self.categories)

    @property
    def label_flagged(self) -> int:
        return sum(c.label_flagged for c in self.categories)

    @property
    def percent(self) -> int:
        return round(100 * self.reviewed / self.total) if self.total else 0


def reviewer_progress(*, progress: list[CategoryProgress]) -> list[ReviewerProgress]:
    """Per reviewer, the summed progress of the categories assigned to them (no extra queries)."""
    by_reviewer: dict[int, ReviewerProgress] = {}
    for item in progress:
        for reviewer in item.reviewers:
            by_reviewer.setdefault(reviewer.pk, ReviewerProgress(reviewer, [])).categories.append(item)
    return sorted(by_reviewer.values(), key=lambda r: r.reviewer.get_username())


def home_dataset(*, user: AbstractBaseUser, dataset_id: str | int | None) -> Dataset | None:
    """The dataset the home page shows: the requested one, else the user's first assigned one."""
    if dataset_id:
        return Dataset.objects.filter(pk=dataset_id).first() if str(dataset_id).isdigit() else None
    assignment = Assignment.objects.filter(reviewer=user).select_related("category__dataset").first()
    if assignment:
        return assignment.category.dataset
    return Dataset.objects.first()


# --------------------------------------------------------------------------- queue
def queue_samples(*, category: Category, filter_key: str = DEFAULT_FILTER, sort_key: str = DEFAULT_SORT) -> QuerySet[Sample]:
    """The category's samples for one queue filter and sort, annotated with what the table shows."""
    condition = QUEUE_FILTERS.get(filter_key, QUEUE_FILTERS[DEFAULT_FILTER])[1]
    ordering = QUEUE_SORTS.get(sort_key, QUEUE_SORTS[DEFAULT_SORT])[1]
    return (
        _with_modes(Sample.objects.filter(label=category))
        .filter(condition)
        .annotate(
            mode2_correct=F("r2__is_correct"),
            mode2_predicted=F("r2__predicted_name"),
            mode3_correct=F("r3__is_correct"),
            mode3_predicted=F("r3__predicted_name"),
            mode3_length=F("r3__length"),
        )
        .select_related("review", "review__reviewer", "review__suggested_label")
        .order_by(*ordering)
    )


def queue_counts(*, category: Category) -> dict[str, int]:
    """How many samples each queue filter holds, in one query."""
    return _with_modes(Sample.objects.filter(label=category)).aggregate(
        **{key: Count("pk", filter=condition) for key, (_, condition) in QUEUE_FILTERS.items()}
    )


def queue_ids(*, category: Category, filter_key: str, sort_key: str) -> list[int]:
    """The ordered sample ids of a queue (one query; used for position, previous and next)."""
    return list(queue_samples(category=category, filter_key=filter_key, sort_key=sort_key).values_list("pk", flat=True))


@dataclass
class QueuePosition:
    index: int | None  # 0-based; None when the sample is not (or no longer) in the queue
    count: int
    previous_id: int | None
    next_id: int | None


def queue_position(*, ids: list[int], sample_id: int) -> QueuePosition:
    """Where `sample_id` stands in the ordered `ids`."""
    if sample_id in ids:
        i = ids.index(sample_id)
        return QueuePosition(i, len(ids), ids[i - 1] if i > 0 else None, ids[i + 1] if i + 1 < len(ids) else None)
    return QueuePosition(None, len(ids), None, ids[0] if ids else None)


# --------------------------------------------------------------------------- sample page
def sample_detail(*, sample_id: int) -> Sample:
    """A sample with everything its page shows, in a fixed number of queries (404 if missing)."""
    return get_object_or_404(
        Sample.objects.select_related(
            "dataset", "label", "review", "review__reviewer", "review__suggested_label"
        ).prefetch_related(
            Prefetch("reasonings", queryset=Reasoning.objects.select_related("predicted_category").order_by("mode")),
            Prefetch("review__edits", queryset=ReviewEdit.objects.select_related("editor", "restored_from").order_by("-version")),
        ),
        pk=sample_id,
    )


def dataset_categories(*, dataset: Dataset) -> list[Category]:
    """All categories of a dataset in display order."""
    return list(dataset.categories.all())


def assignment_matrix(*, dataset: Dataset) -> tuple[list[Category], list, set[tuple[int, int]]]:
    """Categories, active non-staff reviewers and the assigned (category_id, reviewer_id) pairs."""
    categories = list(dataset.categories.all())
    reviewers = list(get_user_model().objects.filter(is_active=True).order_by("-is_staff", "username"))
    pairs = set(Assignment.objects.filter(category__dataset=dataset).values_list("category_id", "reviewer_id"))
    return categories, reviewers, pairs
