"""Assembling a sample from the staged records that name it (one per mode, the info file, train.json)
and choosing its class."""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .planning import INFO, MANIFEST, MODE, TRAIN, SourceFile
from .staging import Staging


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


def assemble_batch(staging: Staging, files: Sequence[SourceFile], *, first: int, last: int,
                   findings: list) -> Iterator[Pending]:
    """The samples ordered `first`…`last` (a batch), each from its staged records in reading order (the
    same checks as when the records were read one by one: the same id twice in a mode keeps the first)."""
    with staging.lock:
        rows = staging.db.execute(
            "SELECT s.external_id, r.seq, r.file_no, r.kind, r.data FROM samples s "
            "JOIN records r ON r.external_id = s.external_id WHERE s.ordinal BETWEEN ? AND ? "
            "ORDER BY s.ordinal, r.seq", (first, last)).fetchall()
        shapes = dict(staging.db.execute("SELECT no, shape FROM files"))
    item: Pending | None = None
    for external_id, seq, file_no, kind, data in rows:
        if item is None or item.external_id != external_id:
            if item is not None:
                yield item
            item = Pending(external_id=external_id)
        kept = json.loads(data)
        merge_record(item, kept, seq, files[file_no], shapes.get(file_no, ""), findings)
    if item is not None:
        yield item


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


def choose_label(item: Pending, plan: dict, findings: list, others: Counter) -> str | None:
    """The sample's class: train.json's label where it names a class of the import, else the
    class its reasoning was filed under, else the info file's label. Every record filed under
    another class is reported; records of no class of the import are counted (other tasks)."""
    by_label = plan["by_label"]
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
