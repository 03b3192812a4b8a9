"""Every non-trivial read of the review application, shaped so query counts stay flat."""
import difflib
from dataclasses import dataclass, field, fields

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, Func, IntegerField, Prefetch, Q, QuerySet, Sum, Value
from django.db.models.lookups import GreaterThan, LessThan
from django.shortcuts import get_object_or_404

from . import rules
from .counts import category_counts
from .models import Assignment, Category, Dataset, Mode, Reasoning, ReasoningVersion, ReviewEdit, Sample, SampleCount
from .suspicion import sort_key as suspicion_sort_key
from .suspicion import threshold as suspicion_threshold


@dataclass(frozen=True)
class QueueFilter:
    label: str
    condition: Q
    # A stored ascending sort column of its own, over the queue's sort (the suspected list reads
    # most suspect first).
    sort_column: str | None = None
    # A condition on sample columns the class counters do not keep: counted on the samples (an
    # index range over the few that match).
    counted_on_samples: bool = False
    # Sort columns every sample of the queue has one value of (mode 2's errors all sort first):
    # a sort by one orders nothing, and the queue reads by id. Kept in it, the sort put a sample
    # that had left the queue after all of it, and PostgreSQL looked for its equals among every
    # queue row of the class (7-11 ms) to find none.
    constant_sort_columns: frozenset[str] = frozenset()


def queue_filters() -> dict[str, QueueFilter]:
    """Queue filters (key → label and condition) on the stored verdicts (review.rules): the same
    condition lists the samples and sums their counters. "待处理" is exactly what the export would
    still leave out (each row shows the reason)."""
    return {
        "all": QueueFilter("全部", Q()),
        "pending": QueueFilter("待处理", rules.IS_PENDING),
        "mode2_wrong": QueueFilter("模式2 错误", rules.IS_MODE2_ERROR, constant_sort_columns=MODE2_ERROR_SORT),
        "unanalysed": QueueFilter("模式2 未分析", rules.IS_MODE2_ERROR & Q(analysed=False),
                                  constant_sort_columns=MODE2_ERROR_SORT),
        "mode3_wrong": QueueFilter("模式3 错误", Q(model_status__in=(rules.WRONG, rules.UNPARSED))),
        "mode3_long": QueueFilter(f"模式3 超 {rules.length_limit()} 字", Q(mode3_over=True)),
        "unreviewed": QueueFilter("未审核", Q(reviewed=False), constant_sort_columns=REVIEW_TIME_SORT),
        "flagged": QueueFilter("标签错误", rules.IS_LABEL_ERROR),
        "rerun": QueueFilter("模型已重跑", rules.IS_RERUN_PENDING),
        # review.suspicion: suspected label errors nobody has reviewed yet, most suspect first.
        # sort_suspicion bounds the same rows through its (label, sort_suspicion) index, so the count
        # reads only the suspects; label_suspicion keeps the threshold exact (the key is rounded).
        SUSPECT_FILTER: QueueFilter(
            "疑似标签错误",
            Q(sort_suspicion__lte=suspicion_sort_key(suspicion_threshold()),
              label_suspicion__gte=suspicion_threshold(), reviewed=False),
            sort_column="sort_suspicion", counted_on_samples=True,
        ),
    }


SUSPECT_FILTER = "suspect"
# review.counts stores sort_mode2 = 0 for every mode-2 error.
MODE2_ERROR_SORT = frozenset({"sort_mode2"})
# review.counts stores sort_reviewed = 0 for every unreviewed sample.
REVIEW_TIME_SORT = frozenset({"sort_reviewed"})


# Sort key → (label, the stored ascending sort column, or None for the id alone). The id breaks ties,
# so every order is total and a sample's neighbours are found from its own values (keyset).
QUEUE_SORTS: dict[str, tuple[str, str | None]] = {
    "id": ("按编号", None),
    "mode2_wrong_first": ("模式2 错误优先", "sort_mode2"),
    "mode3_longest": ("模式3 最长优先", "sort_length"),
    "recently_reviewed": ("最近审核", "sort_reviewed"),
}
DEFAULT_FILTER, DEFAULT_SORT = "all", "id"


# --------------------------------------------------------------------------- progress
@dataclass
class CategoryProgress:
    """A class on the home page: its counts (rules.ClassCounts), reviewers and whether the user may change it."""

    category: Category
    counts: rules.ClassCounts
    reviewers: list = field(default_factory=list)
    can_change: bool = False


def category_progress(*, dataset: Dataset, categories: list[Category] | None = None) -> list[CategoryProgress]:
    """Progress of every category of `dataset` (or just `categories`), with assigned reviewers.

    Two queries whatever the number of categories, samples or reviews.
    """
    if categories is None:
        categories = list(dataset.categories.all())
    counts = category_counts(category_ids=[c.pk for c in categories])
    reviewers: dict[int, list] = {}
    for assignment in Assignment.objects.filter(category__in=[c.pk for c in categories]).select_related("reviewer"):
        reviewers.setdefault(assignment.category_id, []).append(assignment.reviewer)
    return [
        CategoryProgress(
            category=category,
            counts=counts.get(category.pk) or rules.ClassCounts(),
            reviewers=sorted(reviewers.get(category.pk, []), key=lambda u: u.get_username()),
        )
        for category in categories
    ]


@dataclass
class ReviewerProgress:
    reviewer: AbstractBaseUser
    categories: list[CategoryProgress]

    @property
    def counts(self) -> rules.ClassCounts:
        total = rules.ClassCounts()
        for item in self.categories:
            total.add(item.counts)
        return total


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
def _queue_filter_key(filter_key: str) -> str:
    """`filter_key` if it names a queue filter, else the default one's ("all")."""
    return filter_key if filter_key in queue_filters() else DEFAULT_FILTER


def _queue_base(category: Category, filter_key: str) -> QuerySet[Sample]:
    return Sample.objects.filter(label=category).filter(queue_filters()[_queue_filter_key(filter_key)].condition)


def _sort_column(filter_key: str, sort_key: str) -> str | None:
    """The stored column a queue is ordered by (then external_id): the filter's own, else the sort's."""
    chosen = queue_filters().get(filter_key)
    if chosen is not None and chosen.sort_column:
        return chosen.sort_column
    column = QUEUE_SORTS.get(sort_key, QUEUE_SORTS[DEFAULT_SORT])[1]
    return None if chosen is not None and column in chosen.constant_sort_columns else column


def _queue_order(filter_key: str, sort_key: str) -> list[str]:
    column = _sort_column(filter_key, sort_key)
    return [column, "external_id"] if column else ["external_id"]


def queue_samples(*, category: Category, filter_key: str = DEFAULT_FILTER, sort_key: str = DEFAULT_SORT) -> QuerySet[Sample]:
    """The category's samples for one queue filter and sort, in the queue's order (what the queue
    page pages through, `QueuePageRows`). Filter and order use indexed columns."""
    return _queue_base(category, filter_key).order_by(*_queue_order(filter_key, sort_key))


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One row of a queue page: what the table shows of a sample (review_tags.queue_rows)."""

    pk: int
    external_id: str
    mode2_correct: bool | None  # None: no class parsed (or no mode-2 output: then no name either)
    mode2_predicted: str | None
    mode3_correct: bool | None
    mode3_predicted: str | None
    mode3_length: int | None
    mode2_error: bool
    analysed: bool
    label_suspicion: float
    suspicion_suggested: str | None
    export_status: str
    review_id: int | None  # None: not reviewed (the review fields below are None too)
    review_cause: str | None
    label_error: bool | None
    suggested_label_name: str | None
    suggestion_uncertain: bool | None
    reviewer_name: str | None


def _queue_row_columns() -> dict[str, str]:
    """QueueRow's fields → the column each is read from (m2, m3: `rules.with_mode_joins`)."""
    return {
        "pk": "pk", "external_id": "external_id",
        "mode2_correct": "m2__is_correct", "mode2_predicted": "m2__predicted_name",
        "mode3_correct": "m3__is_correct", "mode3_predicted": "m3__predicted_name",
        "mode3_length": "mode3_length", "mode2_error": "mode2_error", "analysed": "analysed",
        "label_suspicion": "label_suspicion", "suspicion_suggested": "suspicion__suggested_category__name",
        "export_status": "export_status",
        "review_id": "review__id", "review_cause": "review__cause", "label_error": "review__label_error",
        "suggested_label_name": "review__suggested_label__name",
        "suggestion_uncertain": "review__suggestion_uncertain",
        "reviewer_name": f"review__reviewer__{get_user_model().USERNAME_FIELD}",
    }


class QueuePageRows:
    """A queue for a Paginator: a page (a slice) is read in two steps — the page's ids from the
    queue's own index (the OFFSET skips index entries), then those 50 rows with what the table
    shows. One query joined every skipped row too: 15 ms for page 19 of a 100,000-sample class.
    The rows are read as values (QueueRow), not models: building a sample, its review, reviewer
    and suggested class per row took ~4 ms of a 35 ms page."""

    def __init__(self, *, category: Category, filter_key: str = DEFAULT_FILTER, sort_key: str = DEFAULT_SORT):
        self.category, self.filter_key, self.sort_key = category, filter_key, sort_key

    def __getitem__(self, page: slice) -> list[QueueRow]:
        ids = list(queue_samples(category=self.category, filter_key=self.filter_key, sort_key=self.sort_key)
                   .values_list("pk", flat=True)[page])
        # By id alone: with the queue's filter and order too, PostgreSQL walked the class's index
        # looking for these ids (8 ms for a rare filter's page).
        rows = {row.pk: row for row in _queue_row_values(ids)}
        return [rows[pk] for pk in ids if pk in rows]  # a row deleted in between is left out


def _queue_row_values(ids: list[int]) -> list[QueueRow]:
    columns = _queue_row_columns()
    values = (rules.with_mode_joins(Sample.objects.filter(pk__in=ids).order_by())
              .values_list(*(columns[f.name] for f in fields(QueueRow))))  # in QueueRow's order
    return [QueueRow(*row) for row in values]


def queue_counts(*, category: Category) -> dict[str, int]:
    """How many samples each queue filter holds, summed from the class's counters (review.counts)."""
    return _filter_counts(category, queue_filters())


def queue_count(*, category: Category, filter_key: str) -> int:
    """How many samples one queue filter holds (an unknown key: all of them), as `queue_counts`
    counts it: the sample page needs only its own queue's, and summing all ten was a query whose
    SQL took 2-3 ms to build."""
    key = _queue_filter_key(filter_key)
    return _filter_counts(category, {key: queue_filters()[key]})[key]


def _filter_counts(category: Category, chosen: dict[str, QueueFilter]) -> dict[str, int]:
    from .counts import ensure_current

    ensure_current()
    summed = {key: Sum("count", filter=f.condition) for key, f in chosen.items() if not f.counted_on_samples}
    totals = SampleCount.objects.filter(category=category).aggregate(**summed) if summed else {}
    for key, f in chosen.items():
        if f.counted_on_samples:
            totals[key] = Sample.objects.filter(label=category).filter(f.condition).count()
    return {key: totals[key] or 0 for key in chosen}


# How far from either end of a queue a sample's place is counted exactly: counting reads one index
# entry per sample before it, so a place deep in a 100,000-sample class cost ~15 ms per page on
# PostgreSQL. Classes of up to twice this size always show an exact place.
POSITION_EXACT_WITHIN = 10_000


@dataclass
class QueuePosition:
    index: int | None  # 0-based; None when not counted (see `beyond`) or not in the queue
    count: int
    previous_id: int | None
    next_id: int | None
    # Set (to POSITION_EXACT_WITHIN) when the sample is in the queue with more than that many
    # samples before and after it: its exact place was not counted.
    beyond: int | None = None


def queue_position(*, sample: Sample, filter_key: str, sort_key: str) -> QueuePosition:
    """Where `sample` stands in its class's queue, and its neighbours, found from its own sort values
    (a keyset: index range lookups, never a list of the queue). The place is counted from the nearer
    end, at most POSITION_EXACT_WITHIN rows from each. `sample` must carry its stored verdict and
    sort values as they were when the reviewer opened it: whether it is in the queue is decided
    from them (`rules.condition_holds`, the filter's SQL logic), without a query."""
    base = _queue_base(sample.label, filter_key)
    column = _sort_column(filter_key, sort_key)
    count = queue_count(category=sample.label, filter_key=filter_key)
    if count == 0:
        # An empty queue (模型已重跑 mostly is) has no place and no neighbours to look for: looking
        # read the class's whole covering index for a match (~20 ms a page in a 100,000-sample
        # class on SQLite, whose planner takes that index, not the filter's partial one).
        return QueuePosition(None, 0, None, None)
    index = beyond = None
    if rules.condition_holds(queue_filters()[_queue_filter_key(filter_key)].condition, vars(sample)):
        limit = POSITION_EXACT_WITHIN
        before = _count_up_to(_beside(base, column, sample, before=True), limit)
        if before < limit:
            index = before
        else:
            after = _count_up_to(_beside(base, column, sample, before=False), limit)
            # `count` comes from the class's counters, kept in the same transactions as the rows.
            index = count - 1 - after if after < limit and count - 1 - after >= limit else None
            beyond = None if index is not None else limit
    previous_id, next_id = _neighbours(base, column, sample)
    return QueuePosition(index, count, previous_id, next_id, beyond)


def queue_neighbours(*, sample: Sample, filter_key: str, sort_key: str) -> tuple[int | None, int | None]:
    """The ids before and after `sample`'s place in the queue (None at an end). A sample no longer in
    the queue (it was just saved out of "待处理") still has a next one: the first after its place."""
    return _neighbours(_queue_base(sample.label, filter_key), _sort_column(filter_key, sort_key), sample)


def _neighbours(base: QuerySet[Sample], column: str | None, sample: Sample) -> tuple[int | None, int | None]:
    return tuple(_beside(base, column, sample, before=before).values_list("pk", flat=True).first()
                 for before in (True, False))


def _count_up_to(rows: QuerySet[Sample], limit: int) -> int:
    """The rows counted, stopping at `limit` (the count reads at most that many index entries)."""
    # Kept in the queue's order, which only its own index serves (unordered, PostgreSQL counted
    # along a narrower index, filtering the whole class); external_id, not the id Django would
    # select, is in that index: the count reads the index alone.
    return rows.values("external_id")[:limit].count()


class _Row(Func):
    """A row value, `(a, b)`. Compared as a whole, `(a, b) < (x, y)` is one range of an index on
    (…, a, b), which PostgreSQL and SQLite both read as such."""

    function = ""
    output_field = IntegerField()  # what a comparison needs to compile; a row is never read


def _beside(base: QuerySet[Sample], column: str | None, sample: Sample, *, before: bool) -> QuerySet[Sample]:
    """The rows before (or after) `sample` in the queue's order (column, external_id), nearest first:
    one range, `(column, external_id) < (its value, its id)`. As two ranges (its own value with a
    smaller id, then smaller values) a place and its neighbours cost up to twice the queries."""
    descending = "-" if before else ""
    if column is None:
        return base.filter(**{f"external_id__{'lt' if before else 'gt'}": sample.external_id}).order_by(
            f"{descending}external_id")
    beyond = (LessThan if before else GreaterThan)(
        _Row(F(column), F("external_id")), _Row(Value(getattr(sample, column)), Value(sample.external_id)))
    return base.filter(beyond).order_by(f"{descending}{column}", f"{descending}external_id")


# --------------------------------------------------------------------------- sample page
def sample_detail(*, sample_id: int) -> Sample:
    """A sample with everything its page shows, in a fixed number of queries (404 if missing)."""
    return get_object_or_404(
        Sample.objects.select_related(
            "dataset", "label", "review", "review__reviewer", "review__suggested_label",
            "suspicion__suggested_category",
        ).prefetch_related(
            Prefetch("reasonings", queryset=Reasoning.objects.select_related("predicted_category").order_by("mode")),
            Prefetch("review__edits", queryset=ReviewEdit.objects.select_related("editor", "restored_from").order_by("-version")),
        ),
        pk=sample_id,
    )


@dataclass
class RerunDiff:
    """A model output that arrived after the review, beside the version the review judged."""

    mode: int
    reviewed: Reasoning
    new: ReasoningVersion
    # ("equal" | "delete" | "insert", text) pieces from the reviewed text to the new one
    segments: list[tuple[str, str]]

    @property
    def label(self) -> str:
        return Mode(self.mode).label


def text_diff(old: str, new: str) -> list[tuple[str, str]]:
    """Character-level diff (CJK text has no word boundaries) as (operation, text) pieces."""
    pieces: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            pieces.append(("equal", old[i1:i2]))
        else:
            if i2 > i1:
                pieces.append(("delete", old[i1:i2]))
            if j2 > j1:
                pieces.append(("insert", new[j1:j2]))
    return pieces


def rerun_diffs(*, sample: Sample) -> list[RerunDiff]:
    """The sample's pending model outputs with their diff (one query; none when nothing waits)."""
    waiting = [r for r in sample.reasonings.all() if r.pending_version]
    if not waiting:
        return []
    versions = {(v.reasoning_id, v.version): v for v in ReasoningVersion.objects.filter(
        reasoning__in=waiting, status=ReasoningVersion.Status.PENDING)}
    diffs = []
    for reasoning in waiting:
        new = versions.get((reasoning.pk, reasoning.pending_version))
        if new is not None:
            diffs.append(RerunDiff(reasoning.mode, reasoning, new, text_diff(reasoning.output, new.output)))
    return diffs


def dataset_categories(*, dataset: Dataset) -> list[Category]:
    """All categories of a dataset in display order."""
    return list(dataset.categories.all())


def assignment_matrix(*, dataset: Dataset) -> tuple[list[Category], list, set[tuple[int, int]]]:
    """Categories, active non-staff reviewers and the assigned (category_id, reviewer_id) pairs."""
    categories = list(dataset.categories.all())
    reviewers = list(get_user_model().objects.filter(is_active=True).order_by("-is_staff", "username"))
    pairs = set(Assignment.objects.filter(category__dataset=dataset).values_list("category_id", "reviewer_id"))
    return categories, reviewers, pairs
