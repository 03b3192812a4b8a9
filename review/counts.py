"""The rules' verdicts, stored: per-sample status columns and per-class counters.

`review.rules` defines every rule once, as SQL over a sample's reasonings and review
(`rules.with_status`). Computing that for a whole class on every page view costs time linear in the
class; so each sample keeps its verdict in columns of its own (`Sample.export_status`, …, sort
keys), and `SampleCount` / `ReasoningCount` keep how many samples and reasonings of each class
share each combination. Pages filter and sort on the columns (indexed) and sum the counters: the
cost of a page does not depend on how big its class or dataset is.

They are kept up to date on every write:
- `samples_refresh(sample_ids)` recomputes the samples' verdicts with `rules.with_status` and moves
  them between counters. Services that write in bulk call it for what they wrote (imports, model
  outputs); single saves of a Sample, Reasoning or Review (a review, a restore, the admin, test
  factories) trigger it through the signal receivers at the end of this module.
- Samples an import creates are written with their verdict already computed in memory
  (`new_sample_values`, `reasoning_counted_key`) and counted with `count_created`: the same
  values, without writing each sample twice and reading it back.
- When TRAINSET_MAX_LENGTH differs from the limit the stored values were computed with
  (`CountsBasis`), `ensure_current()` recomputes everything; `manage.py refresh_counts` does it
  explicitly, and `migrate` does it after a schema change.
"""
from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, Count, F, Q, Sum, Value, When
from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver

from core.bulk import update_rows

from . import rules
from .models import CountsBasis, Mode, Reasoning, ReasoningCount, Review, Sample, SampleCount

CHUNK = 1000  # samples per refresh query (keeps IN (...) lists under SQLite's variable limit)

# Sample columns that are the rules' verdict (besides the counted key), in SampleCount's key order.
COUNT_DIMENSIONS = ("export_status", "model_status", "mode2_error", "analysed", "reviewed", "rerun_pending",
                    "mode3_over", "mode_change", "cause")
STATUS_FIELDS = ("export_status", "model_status", "mode2_error", "analysed", "reviewed", "rerun_pending",
                 "mode3_over", "mode_change", "mode3_length", "sort_mode2", "sort_length", "sort_reviewed",
                 "counted_key")
REASONING_DIMENSIONS = ("mode", "predicted_id", "is_correct", "over_limit")


# --------------------------------------------------------------------------- keys
def _sample_key(label_id: int, values: dict) -> str:
    parts = [str(label_id)] + [_key_part(values[name]) for name in COUNT_DIMENSIONS]
    return "|".join(parts)


def _key_part(value) -> str:
    if value is True:
        return "1"
    if value is False:
        return "0"
    if value is None:
        return "~"
    return str(value)


def _parse_sample_key(key: str) -> tuple[int, dict]:
    label, *parts = key.split("|")
    values = {}
    for name, part in zip(COUNT_DIMENSIONS, parts):
        values[name] = part == "1" if name in ("mode2_error", "analysed", "reviewed", "rerun_pending", "mode3_over") else part
    return int(label), values


def _reasoning_key(label_id: int, mode: int, predicted_id: int | None, is_correct: bool | None, length: int,
                   limit: int) -> str:
    return "|".join((str(label_id), str(mode), _key_part(predicted_id), _key_part(is_correct),
                     _key_part(length > limit), str(length)))


def _parse_reasoning_key(key: str) -> tuple[int, dict, int]:
    label, mode, predicted, correct, over, length = key.split("|")
    return int(label), {
        "mode": int(mode),
        "predicted_id": None if predicted == "~" else int(predicted),
        "is_correct": None if correct == "~" else correct == "1",
        "over_limit": over == "1",
    }, int(length)


# --------------------------------------------------------------------------- counters
def _apply(model, deltas: dict[tuple, list[int]], dimensions: tuple[str, ...], sums: tuple[str, ...]) -> None:
    """Add `deltas` ((category id, *dimension values) → [count delta, *sum deltas]) to counter rows."""
    for key, amounts in deltas.items():
        if not any(amounts):
            continue
        category_id, *values = key
        where = {"category_id": category_id, **dict(zip(dimensions, values))}
        updates = {name: F(name) + amount for name, amount in zip(("count", *sums), amounts)}
        if model.objects.filter(**where).update(**updates):
            continue
        try:
            with transaction.atomic():
                model.objects.create(**where, **dict(zip(("count", *sums), amounts)))
        except IntegrityError:  # created meanwhile by a concurrent writer
            model.objects.filter(**where).update(**updates)


# --------------------------------------------------------------------------- refresh
@transaction.atomic
def samples_refresh(sample_ids: Iterable[int]) -> int:
    """Recompute the stored verdicts of these samples and of their reasonings with the rules, and
    move them between counters. Returns how many samples changed. Samples that no longer exist
    are ignored (their counts left with them: see the pre_delete receiver)."""
    ids = sorted(set(sample_ids))
    changed = 0
    limit = rules.length_limit()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        n, labels = _refresh_samples(chunk, limit)
        changed += n
        _refresh_reasonings(chunk, limit, labels)
    return changed


def _refresh_samples(ids: list[int], limit: int, *, count: bool = True) -> tuple[int, dict[int, int]]:
    """Store the rules' verdicts of these samples; (how many changed, each one's label id)."""
    # No ordering: Sample's default one joins the category and dataset and sorts every chunk.
    # The stored values are read in the same query (a second one cost an import ~2 %).
    rows = (
        rules.with_status(Sample.objects.filter(pk__in=ids).order_by())
        .annotate(
            rerun=Case(When(rules.RERUN_PENDING, then=Value(True)), default=Value(False)),
            m2_id=F("m2__id"), m2_correct=F("m2__is_correct"),
            m3_id=F("m3__id"), m3_correct=F("m3__is_correct"), m3_length=F("m3__length"),
            review_id=F("review__id"), review_cause=F("review__cause"), review_updated=F("review__updated_at"),
        )
        .values("pk", "label_id", "live_export_status", "live_model_status", "live_mode2_error", "live_analysed", "rerun",
                "m2_id", "m2_correct", "m3_id", "m3_correct", "m3_length", "review_id", "review_cause",
                "review_updated", *STATUS_FIELDS)
    )
    deltas: dict[tuple, list[int]] = defaultdict(lambda: [0])
    to_update = []
    labels = {}
    for row in rows:
        labels[row["pk"]] = row["label_id"]
        values = _stored_values(row, limit)
        new = [values[name] for name in STATUS_FIELDS]
        if all(row[name] == value for name, value in zip(STATUS_FIELDS, new)):
            continue
        old_key = row["counted_key"]
        if old_key != values["counted_key"]:
            if old_key:
                label_id, previous = _parse_sample_key(old_key)
                deltas[(label_id, *(previous[name] for name in COUNT_DIMENSIONS))][0] -= 1
            deltas[(row["label_id"], *(values[name] for name in COUNT_DIMENSIONS))][0] += 1
        to_update.append((row["pk"], new))
    update_rows(Sample, STATUS_FIELDS, to_update)
    if count:
        _apply(SampleCount, deltas, COUNT_DIMENSIONS, ())
    return len(to_update), labels


def _stored_values(row: dict, limit: int) -> dict:
    """The stored columns (STATUS_FIELDS) of a sample, from its label, the rules' live values
    (`rules.with_status` or `rules.status_of`), `rerun` and its joined mode-2, mode-3 and review
    columns as `_refresh_samples` reads them."""
    m2_right, m3_right = row["m2_correct"] is True, row["m3_correct"] is True
    m2_not_right = row["m2_id"] is not None and not m2_right
    m3_not_right = row["m3_id"] is not None and not m3_right
    reviewed = row["review_id"] is not None
    values = {
        "export_status": row["live_export_status"],
        "model_status": row["live_model_status"],
        "mode2_error": bool(row["live_mode2_error"]),
        "analysed": bool(row["live_analysed"]),
        "reviewed": reviewed,
        "rerun_pending": bool(row["rerun"]),
        "mode3_over": row["m3_length"] is not None and row["m3_length"] > limit,
        "mode_change": "r2w" if m2_right and m3_not_right else ("w2r" if m2_not_right and m3_right else ""),
        "cause": (row["review_cause"] or "") if reviewed else "",
        "mode3_length": row["m3_length"],
        "sort_mode2": 0 if row["live_mode2_error"] else (1 if row["m2_id"] is not None else 2),
        "sort_length": -(row["m3_length"] or 0),
        "sort_reviewed": -int(row["review_updated"].timestamp() * 1000) if reviewed else 0,
    }
    values["counted_key"] = _sample_key(row["label_id"], values)
    return values


# --------------------------------------------------------------------------- new rows, counted as they are written
# A stand-in for the id of a reasoning written with its sample: the rules only ask whether it exists.
_NOT_YET_WRITTEN = object()


def new_sample_values(*, label_id: int, answers: Mapping[int, Mapping[str, Any]], limit: int) -> dict[str, Any]:
    """The stored verdict (STATUS_FIELDS → value) of a sample about to be created with these
    answers (mode → `rules.answer_fields`), no review and no waiting output: what
    `samples_refresh` stores once it and its reasonings exist, computed before either is written.
    An import creates thousands of samples; writing each one, reading it back with its reasonings
    and writing its verdict again was a fifth of the import. Write the samples and reasonings
    with these values and `reasoning_counted_key`, then `count_created` them."""
    m2, m3 = answers.get(Mode.WITH_DEFINITIONS), answers.get(Mode.LIMITED)
    return dict(_new_sample_values(label_id, m2 is not None, m2 and m2["is_correct"],
                                   m3 is not None, m3 and m3["is_correct"], m3 and m3["length"], limit))


# Few combinations recur (a class, right or wrong, a length): evaluating the rules for each of an
# import's samples was 6 % of it.
@lru_cache(maxsize=4096)
def _new_sample_values(label_id: int, has_m2: bool, m2_correct: bool | None, has_m3: bool, m3_correct: bool | None,
                       m3_length: int | None, limit: int) -> tuple[tuple[str, Any], ...]:
    inputs = {
        **rules.NO_REVIEW, "label_id": label_id,
        "m2__id": _NOT_YET_WRITTEN if has_m2 else None, "m2__is_correct": m2_correct,
        "m3__id": _NOT_YET_WRITTEN if has_m3 else None, "m3__is_correct": m3_correct, "m3__length": m3_length,
    }
    row = {
        **rules.status_of(inputs, limit), "label_id": label_id, "rerun": False,
        "m2_id": inputs["m2__id"], "m2_correct": m2_correct, "m3_id": inputs["m3__id"], "m3_correct": m3_correct,
        "m3_length": m3_length, "review_id": None, "review_cause": None, "review_updated": None,
    }
    values = _stored_values(row, limit)
    return tuple((name, values[name]) for name in STATUS_FIELDS)


def reasoning_counted_key(*, label_id: int, mode: int, answer: Mapping[str, Any], limit: int) -> str:
    """The counted key of a reasoning about to be created with this answer (`rules.answer_fields`)
    for a sample labelled `label_id`: what `samples_refresh` would store."""
    return _reasoning_key(label_id, mode, answer["predicted_category_id"], answer["is_correct"], answer["length"], limit)


def count_created(*, sample_keys: Iterable[str], reasoning_keys: Iterable[str]) -> None:
    """Add samples and reasonings just created with their counted keys stored (`new_sample_values`,
    `reasoning_counted_key`) to the counters, in the same transaction."""
    # Each distinct key parsed once: an import's thousands of rows share a few hundred.
    _apply(SampleCount, _sample_totals(Counter(sample_keys).items()), COUNT_DIMENSIONS, ())
    _apply(ReasoningCount, _reasoning_totals(Counter(reasoning_keys).items()), REASONING_DIMENSIONS, ("length_sum",))


def _sample_totals(keys: Iterable[tuple[str, int]]) -> dict[tuple, list[int]]:
    """(sample counted key, how many) → counter row (category id, *COUNT_DIMENSIONS) → [count]."""
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0])
    for key, n in keys:
        label_id, values = _parse_sample_key(key)
        totals[(label_id, *(values[name] for name in COUNT_DIMENSIONS))][0] += n
    return totals


def _reasoning_totals(keys: Iterable[tuple[str, int]]) -> dict[tuple, list[int]]:
    """(reasoning counted key, how many) → counter row (category id, *REASONING_DIMENSIONS) →
    [count, length sum]."""
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for key, n in keys:
        label_id, values, length = _parse_reasoning_key(key)
        amounts = totals[(label_id, *(values[name] for name in REASONING_DIMENSIONS))]
        amounts[0] += n
        amounts[1] += n * length
    return totals


def _refresh_reasonings(sample_ids: list[int], limit: int, labels: dict[int, int], *, count: bool = True) -> None:
    """Store the counted keys of these samples' reasonings; `labels`: each sample's label id, as
    `_refresh_samples` read it (joining the samples here made PostgreSQL scan the whole table)."""
    deltas: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    to_update = []
    reasonings = Reasoning.objects.filter(sample_id__in=sample_ids).order_by().values_list(
        "pk", "sample_id", "mode", "predicted_category_id", "is_correct", "length", "counted_key")
    for pk, sample_id, mode, predicted_id, is_correct, length, counted_key in reasonings:
        key = _reasoning_key(labels[sample_id], mode, predicted_id, is_correct, length, limit)
        if key == counted_key:
            continue
        _move_reasoning(deltas, counted_key, key)
        to_update.append((pk, [key]))
    update_rows(Reasoning, ["counted_key"], to_update)
    if count:
        _apply(ReasoningCount, deltas, REASONING_DIMENSIONS, ("length_sum",))


def _move_reasoning(deltas, old_key: str, new_key: str | None) -> None:
    if old_key:
        label_id, old, length = _parse_reasoning_key(old_key)
        amounts = deltas[(label_id, *(old[name] for name in REASONING_DIMENSIONS))]
        amounts[0] -= 1
        amounts[1] -= length
    if new_key:
        label_id, new, length = _parse_reasoning_key(new_key)
        amounts = deltas[(label_id, *(new[name] for name in REASONING_DIMENSIONS))]
        amounts[0] += 1
        amounts[1] += length


@transaction.atomic
def refresh_all() -> int:
    """Recompute every stored verdict from scratch, then the counters from the stored keys (after a
    change of the length limit, or to repair); records the limit used. Returns the number of samples.
    Rows whose stored verdict is already right are not rewritten (blanking every key first made each
    row be written twice)."""
    limit = rules.length_limit()
    ids = list(Sample.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        _, labels = _refresh_samples(chunk, limit, count=False)
        _refresh_reasonings(chunk, limit, labels, count=False)
    _rebuild_counters()
    basis = CountsBasis.objects.order_by("pk").first() or CountsBasis()
    basis.length_limit = limit
    basis.save()
    _checked_limits.add(limit)
    return len(ids)


def _rebuild_counters() -> None:
    """The counters as sums over the rows' stored keys (one grouped query per table)."""
    SampleCount.objects.all().delete()
    ReasoningCount.objects.all().delete()
    samples = _sample_totals(
        Sample.objects.exclude(counted_key="").values_list("counted_key").annotate(n=Count("pk")).order_by())
    SampleCount.objects.bulk_create(
        [SampleCount(category_id=key[0], count=n, **dict(zip(COUNT_DIMENSIONS, key[1:]))) for key, (n,) in samples.items()],
        batch_size=1000,
    )
    reasonings = _reasoning_totals(
        Reasoning.objects.exclude(counted_key="").values_list("counted_key").annotate(n=Count("pk")).order_by())
    ReasoningCount.objects.bulk_create(
        [ReasoningCount(category_id=key[0], count=n, length_sum=total, **dict(zip(REASONING_DIMENSIONS, key[1:])))
         for key, (n, total) in reasonings.items()],
        batch_size=1000,
    )


_checked_limits: set[int] = set()


def ensure_current() -> None:
    """Recompute everything once if the stored verdicts were computed with another length limit
    (checked once per process and limit)."""
    limit = rules.length_limit()
    if limit in _checked_limits:
        return
    basis = CountsBasis.objects.order_by("pk").first()
    if basis is None or basis.length_limit != limit:
        refresh_all()
    _checked_limits.add(limit)


# --------------------------------------------------------------------------- signals
# Single-row saves and deletes (a review, a restore, the admin, test factories) keep the stored
# verdicts current; bulk writes call samples_refresh themselves. While a sample is being deleted
# its cascade must not re-count it.
_deleting = threading.local()


def _being_deleted() -> set[int]:
    if not hasattr(_deleting, "ids"):
        _deleting.ids = set()
    return _deleting.ids


@receiver(post_save, sender=Review)
@receiver(post_delete, sender=Review)
@receiver(post_save, sender=Reasoning)
def _refresh_after_row_change(sender, instance, **kwargs):
    if not kwargs.get("raw") and instance.sample_id not in _being_deleted():
        samples_refresh([instance.sample_id])


@receiver(pre_delete, sender=Reasoning)
def _uncount_deleted_reasoning(sender, instance, **kwargs):
    stored = Reasoning.objects.filter(pk=instance.pk).values_list("counted_key", flat=True).first()
    if stored:
        deltas: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        _move_reasoning(deltas, stored, None)
        _apply(ReasoningCount, deltas, REASONING_DIMENSIONS, ("length_sum",))


@receiver(post_delete, sender=Reasoning)
def _refresh_after_reasoning_delete(sender, instance, **kwargs):
    if instance.sample_id not in _being_deleted():
        samples_refresh([instance.sample_id])


@receiver(post_save, sender=Sample)
def _refresh_after_sample_change(sender, instance, **kwargs):
    if not kwargs.get("raw"):
        samples_refresh([instance.pk])


@receiver(pre_delete, sender=Sample)
def _uncount_deleted_sample(sender, instance, **kwargs):
    """A deleted sample leaves the counters (its reasonings leave through their own receiver)."""
    _being_deleted().add(instance.pk)
    stored = Sample.objects.filter(pk=instance.pk).values_list("counted_key", flat=True).first()
    if stored:
        label_id, old = _parse_sample_key(stored)
        _apply(SampleCount, {(label_id, *(old[name] for name in COUNT_DIMENSIONS)): [-1]}, COUNT_DIMENSIONS, ())


@receiver(post_delete, sender=Sample)
def _forget_deleted_sample(sender, instance, **kwargs):
    _being_deleted().discard(instance.pk)


def category_counts(*, category_ids: Iterable[int]) -> dict[int, rules.ClassCounts]:
    """ClassCounts per category id, summed from the counters: a few rows per class,
    whatever its size. Categories without samples are absent."""
    ensure_current()
    sums = {
        "total": Sum("count"),
        "reviewed": Sum("count", filter=rules.IS_REVIEWED),
        "mode2_errors": Sum("count", filter=rules.IS_MODE2_ERROR),
        "analysed": Sum("count", filter=rules.IS_ANALYSED),
        "rerun_pending": Sum("count", filter=rules.IS_RERUN_PENDING),
        "right_to_wrong": Sum("count", filter=rules.IS_RIGHT_TO_WRONG),
        "wrong_to_right": Sum("count", filter=rules.IS_WRONG_TO_RIGHT),
        **{f"status_{key}": Sum("count", filter=Q(export_status=key)) for key in rules.EXPORT_STATUS_LABELS},
        **{f"cause_{code}": Sum("count", filter=Q(mode2_error=True, cause=code)) for code in rules.CAUSE_CODES},
    }
    rows = (SampleCount.objects.filter(category_id__in=list(category_ids)).order_by().values("category_id")
            .annotate(**sums))
    result = {}
    for row in rows:
        row = {key: value or 0 for key, value in row.items()}
        by_status = {key: row[f"status_{key}"] for key in rules.EXPORT_STATUS_LABELS}
        result[row["category_id"]] = rules.ClassCounts(
            total=row["total"],
            reviewed=row["reviewed"],
            mode2_errors=row["mode2_errors"],
            analysed=row["analysed"],
            label_errors=by_status[rules.LABEL_ERROR],
            exported=sum(by_status[s] for s in rules.EXPORTED),
            pending=sum(by_status[s] for s in rules.PENDING),
            rerun_pending=row["rerun_pending"],
            right_to_wrong=row["right_to_wrong"],
            wrong_to_right=row["wrong_to_right"],
            by_status=by_status,
            causes={code: row[f"cause_{code}"] for code in rules.CAUSE_CODES},
        )
    return result
