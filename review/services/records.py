"""Writes of imported samples: classification records (from an import or the demo) saved in place by
(dataset, external id), with their categories and outputs: a new sample written once with its
first outputs, verdict and score (`_create_samples`), an existing one's outputs through
`reasonings_store`."""
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.bulk import insert_values, update_instances
from review import counts, rules
from review.models import Category, Dataset, Reasoning, Sample
from review.parsing import match_category_name
from review.suspicion import (
    Answer, CreatedSample, Suspicion, evidence_basis, info_text, sample_suspicion, sort_key, suspicions_refresh,
    suspicions_store_created,
)

from .reasonings import ModelOutput, reasonings_create_counted, reasonings_store


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


def _sample_values(stored: dict[str, Any], record: ClassificationRecord, label: Category) -> dict[str, Any]:
    """The sample's fields after `record`, from its `stored` ones (`_import_fields`): what the record
    lacks keeps what is stored (re-importing a mode folder must not wipe images or descriptions
    another file gave)."""
    provenance = stored["provenance"]
    if record.provenance:
        provenance = {**(provenance or {}), **record.provenance}
    return {
        "label_id": label.pk,
        "image": record.image or stored["image"],
        "image_info": stored["image_info"] if record.image_info is None else record.image_info,
        "description": stored["description"] if record.description is None else record.description,
        "provenance": provenance,
    }


def _import_fields(sample: Sample) -> dict[str, Any]:
    return {"image": sample.image, "image_info": sample.image_info, "description": sample.description,
            "provenance": sample.provenance}


def _outputs_of(record: ClassificationRecord, *, sample: Sample | None) -> list[ModelOutput]:
    """The record's outputs, by mode, for `sample` (None: a sample not written yet, whose id and
    label `_create_samples` fills in once it is)."""
    return [ModelOutput(sample_id=sample.pk if sample else 0, label_id=sample.label_id if sample else 0, mode=mode,
                        output=output, model_name=record.model_names.get(mode, ""),
                        raw_response=record.raw_responses.get(mode))
            for mode, output in sorted(record.outputs.items())]


def _create_samples(*, dataset: Dataset, rows: list[dict[str, Any]], outputs: dict[str, dict[int, ModelOutput]],
                    category_ids: dict[str, int], result: RecordsSaveResult) -> None:
    """Insert new samples (`rows`: their columns by attname) with their first reasonings
    (`outputs`: external id → mode → output), each row written once and complete: the sample with
    its verdict (`counts.new_sample_values`) and suspicion score, the reasonings with their counted
    keys, then the counters and the stored suspicions, all computed from what is in memory.
    (Written bare and refreshed after, every sample was written three times and read back twice:
    most of an import. Rows, not model instances: making 100,000 instances took 2 s.)"""
    if not rows:
        return
    limit = rules.length_limit()
    basis = evidence_basis(dataset.pk)
    answers: dict[str, dict[int, dict[str, Any]]] = {}
    scores: dict[str, Suspicion] = {}
    for row in rows:
        external_id, label_id = row["external_id"], row["label_id"]
        mine = outputs[external_id]
        answers[external_id] = found = {
            mode: rules.answer_fields(o.output, label_id=label_id, category_ids=category_ids)
            for mode, o in mine.items()}
        row.update(counts.new_sample_values(label_id=label_id, answers=found, limit=limit))
        scores[external_id] = score = sample_suspicion(
            label_id=label_id, matcher=basis.matcher,
            answers=[Answer(mode, a["predicted_category_id"], a["predicted_name"], mine[mode].raw_response)
                     for mode, a in found.items()],
            info=info_text(description=row["description"], image_info=row["image_info"]))
        row["label_suspicion"], row["sort_suspicion"] = score.score, sort_key(score.score)
    now = timezone.now()  # the samples' created_at and updated_at, and their reasonings'
    insert_values(Sample, rows, now=now)
    # Their ids, which insert_values does not return.
    ids = dict(Sample.objects.filter(dataset=dataset, external_id__in=[row["external_id"] for row in rows])
               .values_list("external_id", "pk"))
    created = []
    for row in rows:
        row["id"] = pk = ids[row["external_id"]]
        for mode, o in sorted(outputs[row["external_id"]].items()):
            o.sample_id, o.label_id = pk, row["label_id"]
            created.append((o, answers[row["external_id"]][mode]))
    reasoning_keys = reasonings_create_counted(outputs=created, limit=limit, now=now)
    counts.count_created(sample_keys=[row["counted_key"] for row in rows], reasoning_keys=reasoning_keys)
    reasoning_ids: dict[int, dict[int, tuple[int, datetime]]] = {row["id"]: {} for row in rows}
    for sample_id, mode, pk in Reasoning.objects.filter(sample_id__in=list(reasoning_ids)).values_list(
            "sample_id", "mode", "pk"):
        reasoning_ids[sample_id][mode] = (pk, now)
    suspicions_store_created(basis=basis, samples=[
        CreatedSample(sample_id=row["id"], label_id=row["label_id"], updated_at=now,
                      suspicion=scores[row["external_id"]], reasonings=reasoning_ids[row["id"]]) for row in rows])
    result.samples_created += len(rows)
    result.reasonings_created += len(created)


def _save_records_chunk(*, dataset: Dataset, records: Sequence[ClassificationRecord], by_name: dict[str, Category],
                        names: list[str], result: RecordsSaveResult) -> None:
    samples = {s.external_id: s for s in Sample.objects.filter(dataset=dataset, external_id__in=[r.external_id for r in records])}
    to_update_samples = []
    # Samples created here (external id → their columns) and their outputs (external id → mode →
    # output; a later record's different text replaces an earlier one's, the same text leaves it,
    # as reasonings_store does): written with their verdict, not refreshed.
    new_rows: dict[str, dict[str, Any]] = {}
    new_outputs: dict[str, dict[int, ModelOutput]] = {}
    for record in records:
        label = by_name[resolve_label_name(record.label, names)]
        sample = samples.get(record.external_id)
        if record.external_id in new_rows:  # named again in this save
            new_rows[record.external_id].update(_sample_values(new_rows[record.external_id], record, label))
        elif sample is None:
            new_rows[record.external_id] = {
                "dataset_id": dataset.pk, "external_id": record.external_id, "label_id": label.pk,
                "image": record.image, "image_info": record.image_info, "description": record.description or "",
                "provenance": record.provenance}
            new_outputs[record.external_id] = {}
        else:
            values = _sample_values(_import_fields(sample), record, label)
            if any(getattr(sample, key) != value for key, value in values.items()):
                for key, value in values.items():
                    setattr(sample, key, value)
                to_update_samples.append(sample)
        if record.external_id in new_outputs:
            outputs = new_outputs[record.external_id]
            for o in _outputs_of(record, sample=None):
                if o.mode not in outputs or outputs[o.mode].output != o.output:
                    outputs[o.mode] = o
    category_ids = {name: category.pk for name, category in by_name.items()}
    _create_samples(dataset=dataset, rows=list(new_rows.values()), outputs=new_outputs, category_ids=category_ids,
                    result=result)
    now = timezone.now()
    for sample in to_update_samples:
        sample.updated_at = now
    update_instances(to_update_samples, [*SAMPLE_IMPORT_FIELDS, "updated_at"])
    result.samples_updated += len(to_update_samples)

    outputs = [o for record in records if record.external_id not in new_outputs
               for o in _outputs_of(record, sample=samples[record.external_id])]
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
    update_instances(remark, ["is_correct", "updated_at"])
    existing = [s.pk for s in samples.values() if s.external_id not in new_outputs]
    counts.samples_refresh(existing)
    suspicions_refresh(sample_ids=existing)
    result.reasonings_created += stored.created
    result.reasonings_updated += stored.replaced + stored.pending + len(remark)
    result.reasonings_pending += stored.pending
