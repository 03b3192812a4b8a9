"""The review rules a user can see, each defined once.

Every page (home, queue, sample page, analysis), the API, the Markdown and CSV files and the
training-set export ask these functions, so they cannot disagree:

- `answer_fields`: what a model answer says (predicted class, right/wrong, length), for imports
  and classification jobs alike.
- `check_correction`: whether a reviewer's corrected mode-3 output may enter the training set.
- `with_status`: per sample, in SQL, whether mode 2 is an error, whether that error is analysed,
  and the export status — exported (`kept`, `corrected`), left out as a label error, or pending
  with the reason the export leaves it out. `status_of` evaluates the same conditions in memory
  (`condition_holds`, with the NULL logic of the SQL) for a sample whose joined columns are known.
- stored per sample by review.counts (`Sample.export_status`, … and the SampleCount counters), so
  lists filter on indexed columns (`IS_PENDING`, …) and `category_counts` sums counters: pages cost
  the same whatever the size of a class.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import BooleanField, Case, CharField, F, FilteredRelation, Q, QuerySet, Value, When

from .models import Cause, Mode, Sample
from .parsing import parse_predicted_category, text_length


def length_limit() -> int:
    """The mode-3 length limit (字数) a training output must respect, read live from settings."""
    return int(settings.TRAINSET_MAX_LENGTH)


# --------------------------------------------------------------------------- a model answer
def answer_fields(output: str, *, label_id: int, category_ids: Mapping[str, int]) -> dict:
    """The fields derived from a model answer: the class it names (empty when none or several
    could be read), whether that is the label (None when unparseable) and its length."""
    predicted_name = parse_predicted_category(output, list(category_ids)) or ""
    predicted_id = category_ids.get(predicted_name)
    return {
        "predicted_name": predicted_name,
        "predicted_category_id": predicted_id,
        "is_correct": None if predicted_id is None else predicted_id == label_id,
        "length": text_length(output),
    }


# --------------------------------------------------------------------------- a reviewer's correction
@dataclass
class CorrectionCheck:
    """What `check_correction` found: the problems (empty when the correction may be exported)."""

    text: str
    predicted_name: str = ""
    predicted_category_id: int | None = None
    length: int = 0
    limit: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_correction(text: str, *, expected_id: int, expected_name: str,
                     category_ids: Mapping[str, int]) -> CorrectionCheck:
    """Check a corrected mode-3 output as the export will: parsed like a model answer, its class
    must be `expected` (the label, or the suggested class when the label is flagged wrong), and
    it must be within the length limit."""
    text = (text or "").strip()
    limit = length_limit()
    check = CorrectionCheck(text=text, limit=limit)
    if not text:
        check.problems.append("修正内容为空。")
        return check
    fields = answer_fields(text, label_id=expected_id, category_ids=category_ids)
    check.predicted_name = fields["predicted_name"]
    check.predicted_category_id = fields["predicted_category_id"]
    check.length = fields["length"]
    if check.predicted_category_id is None:
        check.problems.append(f"读不出类别：最后一行应写“类别：{expected_name}”。")
    elif check.predicted_category_id != expected_id:
        check.problems.append(f"类别写的是“{check.predicted_name}”，应为“{expected_name}”。")
    if check.length > limit:
        check.problems.append(f"{check.length} 字，超过 {limit} 字的限制。")
    return check


# --------------------------------------------------------------------------- per-sample status
CAUSE_CODES: tuple[str, ...] = (Cause.DEFINITIONS_OVERLAP, Cause.LABEL_WRONG, Cause.MODEL_WEAK)

# The export status of a sample, in the order they are decided.
KEPT, CORRECTED, LABEL_ERROR = "kept", "corrected", "label_error"
CORRECTION_FAILED, MISSING, UNPARSED, WRONG, TOO_LONG = "correction_failed", "missing", "unparsed", "wrong", "too_long"
EXPORT_STATUS_LABELS: dict[str, str] = {
    KEPT: "导出（保留模型输出）",
    CORRECTED: "导出（审核修正）",
    LABEL_ERROR: "标签错误，不导出（列入 trainset_error.md）",
    CORRECTION_FAILED: "修正未通过检查",
    MISSING: "没有模式3推理",
    UNPARSED: "模式3无法解析类别",
    WRONG: "模式3推理错误",
    TOO_LONG: "模式3超出字数限制",
}
EXPORTED: tuple[str, ...] = (KEPT, CORRECTED)
# Left out of the export until someone acts: each is a reason shown to the reviewer.
PENDING: tuple[str, ...] = (CORRECTION_FAILED, MISSING, UNPARSED, WRONG, TOO_LONG)

# Joined relations `with_status` adds; conditions below refer to them.
M2, M3 = "m2", "m3"
MODE2_ERROR = Q(m2__is_correct=False) | Q(m2__id__isnull=False, m2__is_correct__isnull=True)
ANALYSED = MODE2_ERROR & Q(review__cause__in=CAUSE_CODES)
REVIEWED = Q(review__isnull=False)
# A re-run's output of mode 2 or 3 waits for the reviewer (the modes a review judges).
RERUN_PENDING = Q(m2__pending_version__isnull=False) | Q(m3__pending_version__isnull=False)


def _model_status_rules(limit: int) -> list[tuple[Q, str]]:
    """Why the model's own mode-3 output can or cannot be exported as it is: (condition, status),
    the first that holds decides; none: KEPT."""
    return [
        (Q(m3__id__isnull=True), MISSING),
        (Q(m3__is_correct__isnull=True), UNPARSED),
        (Q(m3__is_correct=False), WRONG),
        (Q(m3__length__gt=limit), TOO_LONG),
    ]


def _export_status_rules(limit: int) -> list[tuple[Q, str]]:
    """What the export does with the sample, review included: (condition, status), the first that
    holds decides; none: KEPT."""
    corrected = Q(review__corrected_output__gt="")
    correction_ok = corrected & Q(review__corrected_category_id=F("label_id"), review__corrected_length__lte=limit)
    return [
        (Q(review__label_error=True), LABEL_ERROR),
        (correction_ok, CORRECTED),
        (corrected, CORRECTION_FAILED),
        *_model_status_rules(limit),
    ]


def _first_of(status_rules: list[tuple[Q, str]]) -> Case:
    return Case(*(When(condition, then=Value(status)) for condition, status in status_rules), default=Value(KEPT),
                output_field=CharField())


def with_status(samples: QuerySet[Sample]) -> QuerySet[Sample]:
    """`samples` annotated with the rules, for lists, filters and counts:

    - `live_mode2_error` / `live_analysed` (booleans): MODE2_ERROR / ANALYSED;
    - `live_model_status`: what the export would do with the model's mode-3 output on its own;
    - `live_export_status`: what the export does with the sample, review included
      (EXPORT_STATUS_LABELS).

    ("live": computed now; review.counts stores them as the Sample columns of the same names
    without the prefix.)

    The mode-2 and mode-3 reasonings are joined once each as `m2` / `m3` (one row per sample), for
    callers' own columns too.
    """
    limit = length_limit()
    return with_mode_joins(samples).annotate(
        live_mode2_error=Case(When(MODE2_ERROR, then=Value(True)), default=Value(False), output_field=BooleanField()),
        live_analysed=Case(When(ANALYSED, then=Value(True)), default=Value(False), output_field=BooleanField()),
        live_model_status=_first_of(_model_status_rules(limit)),
        live_export_status=_first_of(_export_status_rules(limit)),
    )


def with_mode_joins(samples: QuerySet[Sample]) -> QuerySet[Sample]:
    """`samples` with their mode-2 and mode-3 reasonings joined as `m2` and `m3` (one row per sample:
    a sample has one reasoning per mode)."""
    return samples.annotate(
        m2=FilteredRelation("reasonings", condition=Q(reasonings__mode=Mode.WITH_DEFINITIONS)),
        m3=FilteredRelation("reasonings", condition=Q(reasonings__mode=Mode.LIMITED)),
    )


# The columns the rules read, as `status_of` is given them (`with_status`'s joins: m2, m3, review).
STATUS_INPUTS: tuple[str, ...] = (
    "label_id", "m2__id", "m2__is_correct", "m3__id", "m3__is_correct", "m3__length", "review",
    "review__cause", "review__label_error", "review__corrected_output", "review__corrected_category_id",
    "review__corrected_length",
)
# A sample without a review, as its joined row reads.
NO_REVIEW: dict[str, None] = {name: None for name in STATUS_INPUTS if name.split("__")[0] == "review"}


def status_of(row: Mapping[str, Any], limit: int) -> dict[str, Any]:
    """`with_status`'s four values for one sample whose joined columns (STATUS_INPUTS) are known
    in memory — an import computes the verdict of the samples it creates before writing them. The
    very conditions `with_status` compiles to SQL, evaluated as that SQL decides them
    (`condition_holds`); tests/review/test_rules_in_memory.py holds the two equal."""
    return {
        "live_mode2_error": condition_holds(MODE2_ERROR, row),
        "live_analysed": condition_holds(ANALYSED, row),
        "live_model_status": _first_holding(_model_status_rules(limit), row),
        "live_export_status": _first_holding(_export_status_rules(limit), row),
    }


def _first_holding(status_rules: list[tuple[Q, str]], row: Mapping[str, Any]) -> str:
    return next((status for condition, status in status_rules if condition_holds(condition, row)), KEPT)


# --------------------------------------------------------------------------- conditions in memory
_COMPARISONS = {
    "exact": lambda value, expected: value == expected,
    "gt": lambda value, expected: value > expected,
    "gte": lambda value, expected: value >= expected,
    "lt": lambda value, expected: value < expected,
    "lte": lambda value, expected: value <= expected,
    "in": lambda value, expected: value in expected,
}


def condition_holds(condition: Q, row: Mapping[str, Any]) -> bool:
    """Whether `condition` is true of `row` ({lookup path: value}) as the SQL Django writes for it
    decides: a comparison with NULL is unknown, unknown propagates through AND and OR, and a WHEN
    or WHERE takes only true. Covers what the rules use — AND, OR, and the lookups exact, isnull,
    gt, gte, lt, lte, in, against a value or F() of another column; anything else raises rather
    than guess. (Negation is refused: Django adds IS NOT NULL terms to a negated lookup on a
    nullable column, which plain three-valued logic would not reproduce.)"""
    return _truth(condition, row) is True


def _truth(node: Q | tuple, row: Mapping[str, Any]) -> bool | None:
    if isinstance(node, Q):
        if node.negated:
            raise ValueError("condition_holds: negated conditions are not supported")
        results = [_truth(child, row) for child in node.children]
        if node.connector == Q.AND:
            return False if False in results else (None if None in results else True)
        if node.connector == Q.OR:
            return True if True in results else (None if None in results else False)
        raise ValueError(f"condition_holds: unsupported connector {node.connector}")
    lookup, expected = node
    path, _, operator = lookup.rpartition("__")
    if operator not in _COMPARISONS and operator != "isnull":
        path, operator = lookup, "exact"
    value = row[path]  # KeyError: a column the caller did not give (never taken for NULL)
    if operator == "isnull":
        return (value is None) == bool(expected)
    if operator == "exact" and expected is None:  # Django's `=None` is IS NULL
        return value is None
    if isinstance(expected, F):
        expected = row[expected.name]  # a NULL column compares as unknown, like any NULL
    if value is None or expected is None:
        return None
    return _COMPARISONS[operator](value, expected)


@dataclass
class SampleStatus:
    """The rules' verdict on one sample (the same SQL as every list and count)."""

    export_status: str
    model_status: str
    mode2_error: bool

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> SampleStatus:
        """From `with_status`'s (or `status_of`'s) live_… values."""
        return cls(values["live_export_status"], values["live_model_status"], bool(values["live_mode2_error"]))

    @property
    def exported(self) -> bool:
        return self.export_status in EXPORTED

    @property
    def pending(self) -> bool:
        return self.export_status in PENDING

    @property
    def label(self) -> str:
        return EXPORT_STATUS_LABELS[self.export_status]

    @property
    def keepable(self) -> bool:
        """Whether "correct, keep" (`y`) may be recorded: mode 2 right and mode 3 exportable as is."""
        return not self.mode2_error and self.model_status == KEPT

    def keep_blockers(self) -> list[str]:
        """Why "correct, keep" may not be recorded, in words for the reviewer."""
        reasons = []
        if self.mode2_error:
            reasons.append("模式2推理错误：请选择错误原因（1/2/3）")
        if self.model_status != KEPT:
            reasons.append(f"{EXPORT_STATUS_LABELS[self.model_status]}：请修正模式3输出（e）或标记标签错误（f）")
        return reasons


def sample_status(sample_id: int) -> SampleStatus:
    """The status of one sample (one query)."""
    row = (with_status(Sample.objects.filter(pk=sample_id))
           .values("live_export_status", "live_model_status", "live_mode2_error").get())
    return SampleStatus.of(row)


def loaded_sample_status(sample: Sample, reasonings: Mapping[int, Any]) -> SampleStatus:
    """`sample_status` of a sample loaded with its review and its reasonings (mode → Reasoning), as
    the sample page has them: the same rules evaluated in memory (`status_of`) on the columns
    `with_status` joins, without a query whose SQL Django compiled anew for every page (~4 ms, a
    sixth of the sample page's time)."""
    m2, m3 = reasonings.get(Mode.WITH_DEFINITIONS), reasonings.get(Mode.LIMITED)
    review = sample.review_or_none
    inputs = {
        **NO_REVIEW, "label_id": sample.label_id,
        "m2__id": m2.pk if m2 else None, "m2__is_correct": m2.is_correct if m2 else None,
        "m3__id": m3.pk if m3 else None, "m3__is_correct": m3.is_correct if m3 else None,
        "m3__length": m3.length if m3 else None,
    }
    if review is not None:
        inputs.update({
            "review": review.pk, "review__cause": review.cause, "review__label_error": review.label_error,
            "review__corrected_output": review.corrected_output,
            "review__corrected_category_id": review.corrected_category_id,
            "review__corrected_length": review.corrected_length,
        })
    return SampleStatus.of(status_of(inputs, length_limit()))


# --------------------------------------------------------------------------- stored verdicts
# What pages filter and count by: the verdict `with_status` computes, stored per sample by
# review.counts in columns that Sample and SampleCount share, so one condition serves a list of
# samples and the sum of counters alike.
IS_MODE2_ERROR = Q(mode2_error=True)
IS_ANALYSED = Q(analysed=True)
IS_REVIEWED = Q(reviewed=True)
IS_EXPORTED = Q(export_status__in=EXPORTED)
IS_PENDING = Q(export_status__in=PENDING)
IS_LABEL_ERROR = Q(export_status=LABEL_ERROR)
IS_RERUN_PENDING = Q(rerun_pending=True)
IS_RIGHT_TO_WRONG = Q(mode_change="r2w")
IS_WRONG_TO_RIGHT = Q(mode_change="w2r")


# --------------------------------------------------------------------------- counts per class
@dataclass
class ClassCounts:
    """One class's numbers, as every page shows them."""

    total: int = 0
    reviewed: int = 0
    mode2_errors: int = 0
    analysed: int = 0
    label_errors: int = 0
    exported: int = 0
    pending: int = 0
    rerun_pending: int = 0
    right_to_wrong: int = 0
    wrong_to_right: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EXPORT_STATUS_LABELS, 0))
    # cause code → how many mode-2 errors carry it
    causes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CAUSE_CODES, 0))

    @property
    def unreviewed(self) -> int:
        return self.total - self.reviewed

    @property
    def unanalysed(self) -> int:
        return self.mode2_errors - self.analysed

    @property
    def reviewed_percent(self) -> int:
        return round(100 * self.reviewed / self.total) if self.total else 0

    @property
    def done(self) -> bool:
        """Nothing left for a reviewer: every mode-2 error analysed, nothing pending."""
        return not self.pending and not self.unanalysed

    def add(self, other: ClassCounts) -> None:
        for name in ("total", "reviewed", "mode2_errors", "analysed", "label_errors", "exported", "pending",
                     "rerun_pending", "right_to_wrong", "wrong_to_right"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for key, n in other.by_status.items():
            self.by_status[key] = self.by_status.get(key, 0) + n
        for key, n in other.causes.items():
            self.causes[key] = self.causes.get(key, 0) + n
