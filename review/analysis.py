"""The numbers behind 分类分析.md: per-class accuracy per prompt mode, mode-2 errors and their
causes, mode-2 → mode-3 changes, confusion of label vs predicted class, reviewers' progress.

Pure selectors: every function reads, none writes. Each one issues a fixed number of aggregate
queries whatever the size of the dataset, so the overview stays fast with 100,000 samples.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import FilteredRelation, Q, Sum
from django.db.models.functions import Coalesce

from . import rules
from .counts import category_counts
from .models import Assignment, Category, Cause, Dataset, Mode, ReasoningCount, Sample
from .rules import CAUSE_CODES

MODES: tuple[int, ...] = (Mode.FREE, Mode.WITH_DEFINITIONS, Mode.LIMITED)

# A class's definitions are proposed for revision when at least this many of its mode-2 errors are
# marked "definitions overlap" and they make up at least this share of its reviewed mode-2 errors.
OVERLAP_MIN_COUNT = 2
OVERLAP_MIN_SHARE = 1 / 3


@dataclass
class ModeStats:
    """How one prompt mode did on a set of samples."""

    mode: int
    total: int = 0
    correct: int = 0
    wrong: int = 0
    unparsed: int = 0
    over_limit: int = 0
    mean_length: float | None = None

    @property
    def accuracy(self) -> float | None:
        """Correct / reasonings (an unparseable answer counts as not correct); None without data."""
        return self.correct / self.total if self.total else None

    @property
    def accuracy_percent(self) -> float | None:
        return round(self.accuracy * 100, 1) if self.total else None

    @property
    def label(self) -> str:
        return Mode(self.mode).label


@dataclass
class ModeTwoError:
    """A sample mode 2 got wrong (or could not be parsed), with the reviewer's cause if given."""

    sample_id: int
    external_id: str
    predicted_name: str
    predicted_category: str
    cause: str
    label_error: bool
    unparsed: bool
    note: str = ""

    @property
    def cause_label(self) -> str:
        return Cause(self.cause).label if self.cause else "未标注"


@dataclass
class ClassSummary:
    """One row of the dataset overview; `counts` are the rules' (review.counts.category_counts)."""

    category: Category
    counts: rules.ClassCounts = field(default_factory=rules.ClassCounts)
    modes: dict[int, ModeStats] = field(default_factory=dict)
    right_to_wrong: int = 0
    wrong_to_right: int = 0
    reviewers: list[str] = field(default_factory=list)

    @property
    def sample_count(self) -> int:
        return self.counts.total

    @property
    def mode2_errors(self) -> int:
        return self.counts.mode2_errors

    @property
    def label_errors(self) -> int:
        return self.counts.label_errors

    @property
    def causes(self) -> dict[str, int]:
        return self.counts.causes

    @property
    def causes_marked(self) -> int:
        return self.counts.analysed

    @property
    def overlap_count(self) -> int:
        return self.causes.get(Cause.DEFINITIONS_OVERLAP, 0)

    @property
    def propose_revision(self) -> bool:
        """Whether many mode-2 errors of this class blame overlapping definitions."""
        marked = self.causes_marked
        return (
            self.overlap_count >= OVERLAP_MIN_COUNT
            and marked > 0
            and self.overlap_count / marked >= OVERLAP_MIN_SHARE
        )

    def mode(self, mode: int) -> ModeStats:
        return self.modes.get(mode) or ModeStats(mode=mode)


@dataclass
class ReviewerProgress:
    username: str
    categories: list[str]
    counts: rules.ClassCounts


@dataclass
class ClassAnalysis:
    """Everything the team wrote by hand about one class in 分类分析.md."""

    category: Category
    counts: rules.ClassCounts
    modes: dict[int, ModeStats]
    mode2_errors: list[ModeTwoError]
    # (sample pk, sample id) pairs
    right_to_wrong: list[tuple[int, str]]
    wrong_to_right: list[tuple[int, str]]
    # predicted class name (or "" when unparsed) → {mode: count}, for this class's samples
    predicted: dict[str, dict[int, int]]
    # label name → {mode: count}: samples of other classes predicted as this class
    predicted_as_this: dict[str, dict[int, int]]
    revisions: list
    propose_revision: bool
    overlap_with: list[tuple[str, int]]

    @property
    def sample_count(self) -> int:
        return self.counts.total

    @property
    def causes(self) -> dict[str, int]:
        return self.counts.causes

    def mode(self, mode: int) -> ModeStats:
        return self.modes.get(mode) or ModeStats(mode=mode)


# --------------------------------------------------------------------------- building blocks


def _reasoning_counters(dataset: Dataset, *, category_id: int | None = None):
    """The dataset's reasoning counters (review.counts), optionally one label class's only."""
    from .counts import ensure_current

    ensure_current()
    qs = ReasoningCount.objects.filter(category__dataset=dataset, count__gt=0)
    return qs.filter(category_id=category_id) if category_id is not None else qs


def _reasoning_groups(dataset: Dataset, *, category_id: int | None = None):
    """Reasoning counts grouped by (label, mode, predicted class), summed from the counters: enough
    for accuracy and confusion, whatever the size of the dataset.

    is_correct is implied by label == predicted (None predicted = unparseable), so no extra group.
    """
    return [
        {"sample__label_id": row.pop("category_id"), "predicted_category_id": row.pop("predicted_id"), **row}
        for row in _reasoning_counters(dataset, category_id=category_id)
        .values("category_id", "mode", "predicted_id")
        .annotate(
            total=Sum("count"),
            correct=Coalesce(Sum("count", filter=Q(is_correct=True)), 0),
            wrong=Coalesce(Sum("count", filter=Q(is_correct=False)), 0),
            unparsed=Coalesce(Sum("count", filter=Q(is_correct__isnull=True)), 0),
            over_limit=Coalesce(Sum("count", filter=Q(over_limit=True)), 0),
            length_sum=Sum("length_sum"),
        )
        .order_by()
    ]


def _mode_stats(dataset: Dataset, *, category_id: int | None = None, groups=None) -> dict[int | None, dict[int, ModeStats]]:
    """ModeStats keyed by label id (or None for the whole dataset), then by mode."""
    groups = groups if groups is not None else _reasoning_groups(dataset, category_id=category_id)
    result: dict[int | None, dict[int, ModeStats]] = defaultdict(dict)
    length_sums: dict[tuple[int | None, int], int] = defaultdict(int)
    for row in groups:
        for key in (row["sample__label_id"], None):
            stats = result[key].get(row["mode"])
            if stats is None:
                stats = result[key][row["mode"]] = ModeStats(mode=row["mode"])
            for name in ("total", "correct", "wrong", "unparsed", "over_limit"):
                setattr(stats, name, getattr(stats, name) + row[name])
            length_sums[(key, row["mode"])] += row["length_sum"] or 0
    for key, modes in result.items():
        for mode, stats in modes.items():
            stats.mean_length = round(length_sums[(key, mode)] / stats.total, 1) if stats.total else None
    result.setdefault(None, {})
    return result


# --------------------------------------------------------------------------- overview


@dataclass
class DatasetOverview:
    dataset: Dataset
    classes: list[ClassSummary]
    totals: dict[int, ModeStats]
    counts: rules.ClassCounts
    right_to_wrong: int
    wrong_to_right: int
    reviewers: list[ReviewerProgress]
    top_confusions: list[tuple[str, str, int]]

    @property
    def causes(self) -> dict[str, int]:
        return self.counts.causes

    @property
    def label_errors(self) -> int:
        return self.counts.label_errors

    @property
    def mode2_errors(self) -> int:
        return self.counts.mode2_errors

    @property
    def causes_marked(self) -> int:
        return self.counts.analysed

    @property
    def unmarked_mode2_errors(self) -> int:
        return self.counts.unanalysed

    @property
    def proposals(self) -> list[ClassSummary]:
        return [c for c in self.classes if c.propose_revision]

    def total(self, mode: int) -> ModeStats:
        return self.totals.get(mode) or ModeStats(mode=mode)

    @property
    def cause_shares(self) -> dict[str, int]:
        """Percent of the marked mode-2 errors per cause."""
        marked = self.causes_marked
        return {code: round(self.causes.get(code, 0) * 100 / marked) if marked else 0 for code in CAUSE_CODES}


def dataset_overview(*, dataset: Dataset) -> DatasetOverview:
    """The whole dataset at a glance: per-class accuracy per mode, causes, progress, proposals."""
    categories = list(dataset.categories.all())
    groups = _reasoning_groups(dataset)
    stats = _mode_stats(dataset, groups=groups)
    counts = category_counts(category_ids=[c.pk for c in categories])
    reviewers_by_category: dict[int, list[str]] = defaultdict(list)
    categories_by_reviewer: dict[str, list[int]] = defaultdict(list)
    for category_id, username in (
        Assignment.objects.filter(category__dataset=dataset)
        .order_by("reviewer__username", "category__position", "category__name")
        .values_list("category_id", "reviewer__username")
    ):
        reviewers_by_category[category_id].append(username)
        categories_by_reviewer[username].append(category_id)

    classes = []
    for category in categories:
        class_counts = counts.get(category.pk) or rules.ClassCounts()
        classes.append(
            ClassSummary(
                category=category,
                counts=class_counts,
                modes=stats.get(category.pk, {}),
                right_to_wrong=class_counts.right_to_wrong,
                wrong_to_right=class_counts.wrong_to_right,
                reviewers=reviewers_by_category.get(category.pk, []),
            )
        )
    by_id = {c.category.pk: c for c in classes}
    reviewers = []
    for username, cids in categories_by_reviewer.items():
        total = rules.ClassCounts()
        for cid in cids:
            if cid in by_id:
                total.add(by_id[cid].counts)
        reviewers.append(ReviewerProgress(username=username, counts=total,
                                          categories=[by_id[cid].category.name for cid in cids if cid in by_id]))
    names = {c.pk: c.name for c in categories}
    confusion: dict[tuple[int, int | None], int] = defaultdict(int)
    for row in groups:
        if row["mode"] == Mode.WITH_DEFINITIONS:
            confusion[(row["sample__label_id"], row["predicted_category_id"])] += row["total"]
    top_confusions = sorted(
        (
            (names.get(label_id, "?"), names.get(predicted_id, "?"), n)
            for (label_id, predicted_id), n in confusion.items()
            if predicted_id is not None and predicted_id != label_id
        ),
        key=lambda t: (-t[2], t[0], t[1]),
    )[:10]
    overall = rules.ClassCounts()
    for c in classes:
        overall.add(c.counts)
    return DatasetOverview(
        dataset=dataset,
        classes=classes,
        totals=stats.get(None, {}),
        counts=overall,
        right_to_wrong=sum(c.right_to_wrong for c in classes),
        wrong_to_right=sum(c.wrong_to_right for c in classes),
        reviewers=reviewers,
        top_confusions=top_confusions,
    )


def confusion_counts(*, dataset: Dataset, mode: int, category_id: int | None = None) -> dict[tuple[int, int | None], int]:
    """{(label id, predicted id or None when unparsed): count} for one mode, from the counters."""
    qs = _reasoning_counters(dataset).filter(mode=mode)
    if category_id is not None:
        qs = qs.filter(Q(category_id=category_id) | Q(predicted_id=category_id))
    return {
        (row["category_id"], row["predicted_id"]): row["n"]
        for row in qs.values("category_id", "predicted_id").annotate(n=Sum("count")).order_by()
    }


@dataclass
class ConfusionTable:
    mode: int
    categories: list[Category]
    # rows[i][j]: samples labelled categories[i] predicted as categories[j]; last column: unparsed
    rows: list[list[int]]

    @property
    def label(self) -> str:
        return Mode(self.mode).label


def confusion_table(*, dataset: Dataset, mode: int) -> ConfusionTable:
    """The full label × predicted matrix of one mode (last column: unparseable answers)."""
    categories = list(dataset.categories.all())
    index = {c.pk: i for i, c in enumerate(categories)}
    rows = [[0] * (len(categories) + 1) for _ in categories]
    for (label_id, predicted_id), n in confusion_counts(dataset=dataset, mode=mode).items():
        if label_id not in index:
            continue
        column = index.get(predicted_id, len(categories))  # a class of another dataset counts as unparsed
        rows[index[label_id]][column] += n
    return ConfusionTable(mode=mode, categories=categories, rows=rows)


# --------------------------------------------------------------------------- one class


def mode2_errors(*, category: Category) -> list[ModeTwoError]:
    """The class's samples mode 2 did not get right (rules.MODE2_ERROR), by id, with predicted
    class, cause and the reviewer's note."""
    rows = (
        Sample.objects.filter(label=category, mode2_error=True)
        .annotate(m2=FilteredRelation("reasonings", condition=Q(reasonings__mode=Mode.WITH_DEFINITIONS)))
        .order_by("external_id")
        .values(
            "pk", "external_id", "m2__predicted_name", "m2__predicted_category__name", "m2__is_correct",
            "review__cause", "review__label_error", "review__note",
        )
    )
    return [
        ModeTwoError(
            sample_id=row["pk"],
            external_id=row["external_id"],
            predicted_name=row["m2__predicted_name"] or "",
            predicted_category=row["m2__predicted_category__name"] or "",
            cause=row["review__cause"] or "",
            label_error=bool(row["review__label_error"]),
            unparsed=row["m2__is_correct"] is None,
            note=row["review__note"] or "",
        )
        for row in rows
    ]


def class_analysis(*, category: Category) -> ClassAnalysis:
    """Sample count, accuracy per mode, mode-2 errors and causes, mode 2 → 3 changes, confusion."""
    dataset = category.dataset
    modes = _mode_stats(dataset, category_id=category.pk).get(category.pk, {})
    errors = mode2_errors(category=category)
    counts = category_counts(category_ids=[category.pk]).get(category.pk) or rules.ClassCounts()
    samples = Sample.objects.filter(label=category).order_by("external_id")
    r2w = list(samples.filter(rules.IS_RIGHT_TO_WRONG).values_list("pk", "external_id"))
    w2r = list(samples.filter(rules.IS_WRONG_TO_RIGHT).values_list("pk", "external_id"))

    names = {c.pk: c.name for c in dataset.categories.all()}
    predicted: dict[str, dict[int, int]] = defaultdict(dict)
    predicted_as_this: dict[str, dict[int, int]] = defaultdict(dict)
    # One query for all modes: this class's samples, and samples of other classes predicted as it.
    rows = (
        _reasoning_counters(dataset)
        .filter(Q(category_id=category.pk) | Q(predicted_id=category.pk))
        .values("mode", "category_id", "predicted_id")
        .annotate(n=Sum("count"))
        .order_by()
    )
    for row in rows:
        mode, label_id, predicted_id, n = row["mode"], row["category_id"], row["predicted_id"], row["n"]
        if label_id == category.pk:
            predicted[names.get(predicted_id, "") if predicted_id else ""][mode] = n
        elif predicted_id == category.pk:
            predicted_as_this[names.get(label_id, "?")][mode] = n
    # The class itself first, then by mode-2 count, then name: a stable, readable order.
    def order(item):
        name, counts = item
        return (name != category.name, name == "", -counts.get(Mode.WITH_DEFINITIONS, 0), name)

    overlap = defaultdict(int)
    for error in errors:
        if error.cause == Cause.DEFINITIONS_OVERLAP and error.predicted_category:
            overlap[error.predicted_category] += 1
    summary = ClassSummary(category=category, counts=counts)
    return ClassAnalysis(
        category=category,
        counts=counts,
        modes=modes,
        mode2_errors=errors,
        right_to_wrong=r2w,
        wrong_to_right=w2r,
        predicted=dict(sorted(predicted.items(), key=order)),
        predicted_as_this=dict(sorted(predicted_as_this.items(), key=lambda kv: (-kv[1].get(Mode.WITH_DEFINITIONS, 0), kv[0]))),
        revisions=list(category.definition_revisions.select_related("author").order_by("-version")),
        propose_revision=summary.propose_revision,
        overlap_with=sorted(overlap.items(), key=lambda kv: (-kv[1], kv[0])),
    )
