"""Assembling a sample from the staged records that name it (one per mode, the info file, train.json)
and choosing its class: `batch_rows` reads a batch's records from the staging file, `assemble_rows`
makes its samples from them, here or — reading their records and storing their images too — in an
import's processes (`assemble_and_store`, given a run of PROCESS_CHUNK samples at a time)."""
from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from review.services import ClassificationRecord

from .images import locate_and_store_or_none
from .planning import INFO, MANIFEST, MODE, TRAIN, ImportOptions, SourceFile
from .staging import Staging, read_only


@dataclass
class Label:
    name: str
    kind: str
    location: str
    seq: int


@dataclass
class Pending:
    """A sample being assembled from the records that name it (one per mode, info, train.json …)."""

    external_id: str
    labels: list[Label] = field(default_factory=list)
    images: list[tuple[str, str, str, int]] = field(default_factory=list)  # (as written, base dir, location, seq)
    outputs: dict[int, str] = field(default_factory=dict)
    output_locations: dict[int, str] = field(default_factory=dict)
    model_names: dict[int, str] = field(default_factory=dict)
    image_info: Any = None
    description: str | None = None
    description_location: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    train: Label | None = None
    train_images: list[tuple[str, str, str, int]] = field(default_factory=list)
    has_records: bool = False  # records other than train.json's name it


# A staged record of a batch: (external id, seq, file number, its JSON), in the batch's order (the
# file's kind is its SourceFile's).
StagedRow = tuple[str, int, int, str]


def batch_rows(staging: Staging, *, first: int, last: int) -> tuple[list[StagedRow], dict[int, str]]:
    """The staged records of the samples ordered `first`…`last` (a batch), each sample's in reading
    order, and the shape of every file read (`merge_record` records it in the provenance)."""
    with staging.lock:
        return _select_batch_rows(staging.db, first, last)


def _select_batch_rows(db: sqlite3.Connection, first: int,
                       last: int) -> tuple[list[StagedRow], dict[int, str]]:
    rows = db.execute(
        "SELECT s.external_id, r.seq, r.file_no, r.data FROM samples s "
        "JOIN records r ON r.external_id = s.external_id WHERE s.ordinal BETWEEN ? AND ? "
        "ORDER BY s.ordinal, r.seq", (first, last)).fetchall()
    return rows, dict(db.execute("SELECT no, shape FROM files"))


@dataclass
class Assembled:
    """What assembling some of a batch's samples gave, in their order: a record ready to save, or
    (the sample, its class) for one whose image the import is still to store; and the findings and
    the records of no class of the import (counted by label)."""

    entries: list[ClassificationRecord | tuple[Pending, str]] = field(default_factory=list)
    findings: list[tuple[int, bool, str, str]] = field(default_factory=list)
    others: Counter = field(default_factory=Counter)


def assemble_rows(rows: Iterable[StagedRow], *, files: Sequence[SourceFile], shapes: dict[int, str],
                  by_label: dict[str, str], store: Callable[[Pending], str | None] | None = None,
                  ) -> Assembled:
    """Assemble each sample from its staged records (the same checks as when the records were read one
    by one: the same id twice in a mode keeps the first), choose its class, and — with `store` —
    store its image: a sample whose image `store` did not store (None) is left to the import."""
    assembled = Assembled()
    item: Pending | None = None

    def finish(item: Pending) -> None:
        label = choose_label(item, by_label, assembled.findings, assembled.others)
        if label is None:
            return
        image = store(item) if store is not None and item.images else None
        if item.images and image is None:
            assembled.entries.append((item, label))
        else:
            assembled.entries.append(record_of(item, label, image or ""))

    for external_id, seq, file_no, data in rows:
        if item is None or item.external_id != external_id:
            if item is not None:
                finish(item)
            item = Pending(external_id=external_id)
        merge_record(item, json.loads(data), seq, files[file_no], shapes.get(file_no, ""), assembled.findings)
    if item is not None:
        finish(item)
    return assembled


def record_of(item: Pending, label: str, image: str) -> ClassificationRecord:
    return ClassificationRecord(external_id=item.external_id, label=label, image=image, outputs=item.outputs,
                                model_names=item.model_names, image_info=item.image_info,
                                description=item.description, provenance=item.provenance or None)


def assemble_and_store(first: int, last: int, *, staging_path: Path, files: Sequence[SourceFile],
                       by_label: dict[str, str], root: Path, options: ImportOptions,
                       folder: str) -> Assembled:
    """What an import's process runs for the samples ordered `first`…`last` (a run of a batch's):
    their records read from the staging file (as `batch_rows` does, on a read-only connection of its own),
    `assemble_rows`, each sample's first image path located and stored (`locate_and_store_or_none`).
    Reading, decoding, merging and storing are Python: done in the import's own process, they held
    the interpreter lock its writes wait for after every call into the database (and the records
    were pickled over to the process as well)."""
    db = read_only(staging_path)
    try:
        rows, shapes = _select_batch_rows(db, first, last)
    finally:
        db.close()

    def store(item: Pending) -> str | None:
        written, base, _, _ = item.images[0]
        return locate_and_store_or_none(written, base, item.external_id, root=root, options=options,
                                        folder=folder)

    return assemble_rows(rows, files=files, shapes=shapes, by_label=by_label, store=store)


def merge_record(item: Pending, kept: dict, seq: int, file: SourceFile, shape: str, findings: list) -> None:
    """Add one staged record to the sample it names (a second record for the same mode or description is
    reported and left out)."""
    location, who = kept["loc"], f"{item.external_id}："
    image = (kept["image"], file.folder, location, seq) if kept["image"] else None
    if file.kind == TRAIN:
        if item.train is not None:
            findings.append((seq, False, location, f"{who}在 {item.train.location} 已出现，这一条未使用"))
            return
        item.train = Label(kept["label"], TRAIN, location, seq)
        if image:
            item.train_images.append(image)
        return
    outputs = {int(m): text for m, text in (kept.get("outputs") or {}).items()}
    # The same id twice for one mode (or one description): keep the first, say where it was.
    for m in outputs:
        if m in item.outputs:
            findings.append((seq, False, location, f"{who}模式{m}已在 {item.output_locations[m]} 出现，这一条未导入"))
            return
    description = kept.get("description")
    if description is not None and item.description is not None:
        findings.append((seq, False, location, f"{who}图片描述已在 {item.description_location} 出现，这一条未导入"))
        return
    item.has_records = True
    if kept["label"]:
        item.labels.append(Label(kept["label"], file.kind, location, seq))
    model = kept.get("model", "")
    for m, text in outputs.items():
        item.outputs[m] = text
        item.output_locations[m] = location
        if model:
            item.model_names[m] = model
    if image:
        item.images.append(image)
    if "image_info" in kept:
        item.image_info = kept["image_info"]
    if description is not None:
        item.description, item.description_location = description, location
    if "prov" in kept:
        item.provenance[f"mode{file.mode}"] = {"file": file.rel, "shape": shape, **kept["prov"]}


def choose_label(item: Pending, by_label: dict[str, str], findings: list, others: Counter) -> str | None:
    """The sample's class: train.json's label where it names a class of the import, else the
    class its reasoning was filed under, else the info file's label. Every record filed under
    another class is reported; records of no class of the import are counted (other tasks).
    `by_label`: the class each label name of the import denotes."""
    train = item.train
    train_class = by_label.get(train.name) if train else None
    hard = [(by_label.get(lab.name), lab) for lab in item.labels if lab.kind in (MODE, MANIFEST)]
    soft = [(by_label.get(lab.name), lab) for lab in item.labels if lab.kind == INFO]
    label = train_class or next((c for c, _ in hard if c), None) or next((c for c, _ in soft if c), None)
    if label is None:
        if item.has_records:
            others[next((lab.name for lab in item.labels), "") or "（无标签）"] += 1
        elif train is not None:
            others[train.name or "（无标签）"] += 1
        return None
    who = item.external_id
    for cls, lab in hard:
        if cls and cls != label:
            if train_class:
                findings.append((lab.seq, False, lab.location, f"{who}：train.json（{train.location}）的标签是“{label}”，"
                                                               f"这条记录却在“{cls}”下；已按 train.json 归入“{label}”"))
            else:
                first = next(lab for c, lab in hard if c == label)
                findings.append((lab.seq, False, lab.location, f"{who}：这条记录在“{cls}”下，与 {first.location} 的"
                                                               f"“{label}”不一致；沿用“{label}”"))
    for cls, lab in soft:
        if cls != label:
            findings.append((lab.seq, True, lab.location,
                             f"{who}：信息提取文件的标签“{lab.name}”与样本的类别“{label}”不一致"
                             f"（以{'train.json' if train_class else '推理结果所在类别'}为准）"))
    item.images.extend(item.train_images)
    return label
