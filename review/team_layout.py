"""The way back: the corrected training set in the team's own folder layout.

`export_trainset --layout team --output DIR` writes

    DIR/reasonbyQwen72b_model3/<class>/save_train_<class>.json   (wherever each record came from)
    DIR/trainset_error.md

so the team's scripts read the corrected folder unchanged. Which samples go in, and with which
output, is `review.exports.trainset_records` (corrections applied, label errors and pending samples
left out); this module only decides where each row is written and how:

- a sample imported from the team's mode-3 folder goes back to the file it was read from, at its
  position, with the record's own keys and image path as written; only the output is replaced;
- files keep their shape (JSON array, JSON lines, `record,\\n` lines, one record per file); a
  multi-record file whose records were all left out is still written, empty, so a script that
  loops over the class files finds each one;
- a sample with no mode-3 record on file (made in datafix, or imported from a manifest) goes into
  its class's file, or `reasonbyQwen72b_model3/<class>/save_train_<class>.json` as
  `{"id", "image": [path under MEDIA_ROOT], "output"}`.

The folder is built beside DIR under a `.partial-…` name and renamed into place; an existing DIR is
replaced only when it is an earlier export (it holds `EXPORT_MARKER`), never a folder of other files.
Like every export it is also recorded through `pipelines.datasets.exports.export_create`: a folder under
EXPORT_ROOT holding the layout as `reasonbyQwen72b_model3.zip` and `trainset_error.md`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import files
from pipelines.datasets.exports import EmptyExport, ExportContent, export_create
from pipelines.models import Export

from core.errors import ApplicationError
from .exports import EXPORT_KIND, TrainsetReport, trainset_error_markdown, trainset_records
from .importing import MODE_FOLDER
from .models import Dataset, Sample

LAYOUT = "team"
MODE3_FOLDER = "reasonbyQwen72b_model3"
ERRORS_FILE = "trainset_error.md"
EXPORT_MARKER = ".datafix-export.json"
ARCHIVE_NAME = f"{MODE3_FOLDER}.zip"  # the export's download: the whole layout
MULTI_RECORD_SHAPES = ("array", "lines", "comma_lines")


_UNSAFE_IN_NAMES = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def default_class_file(class_name: str) -> str:
    """Where a class's records go when none came from a file: the batch script's naming
    (`save_train_<class>.json`, spaces and parentheses as `_`) in a folder named after the class."""
    folder = _UNSAFE_IN_NAMES.sub("_", class_name).strip(" .") or "class"
    stem = re.sub(r"[\s()]", "_", _UNSAFE_IN_NAMES.sub("_", class_name))
    return f"{MODE3_FOLDER}/{folder}/save_train_{stem}.json"


@dataclass
class _File:
    shape: str
    rows: list[tuple[tuple, dict[str, Any]]] = field(default_factory=list)  # (order key, record)

    def render(self) -> str:
        records = [record for _, record in sorted(self.rows, key=lambda row: row[0])]
        if self.shape == "lines":
            return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        if self.shape == "comma_lines":
            return "".join(json.dumps(r, ensure_ascii=False) + ",\n" for r in records)
        if self.shape == "object" and len(records) == 1:
            return json.dumps(records[0], ensure_ascii=False, indent=4) + "\n"
        # (Two records for one single-record file cannot both be an object: an array loses none.)
        return json.dumps(records, ensure_ascii=False, indent=4) + "\n"


def _safe_relative(rel: str) -> str:
    """A provenance path made safe to write under the export folder (it came from an import): no
    `..`, and under a mode folder (the import root may have been the mode-3 folder itself)."""
    parts = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".", "..")] or ["records.json"]
    if len(parts) == 1 or not MODE_FOLDER.search(parts[0]):
        parts = [MODE3_FOLDER, *parts]
    return "/".join(parts)


def plan_team_files(*, dataset: Dataset, report: TrainsetReport) -> dict[str, _File]:
    """Every file of the export with its records, from `trainset_records` and the import provenance."""
    samples = {
        external_id: (label, image, (provenance or {}).get("mode3"))
        for external_id, label, image, provenance in Sample.objects.filter(dataset=dataset)
        .values_list("external_id", "label__name", "image", "provenance").iterator(chunk_size=2000)
    }
    files: dict[str, _File] = {}
    class_files: dict[str, Counter] = defaultdict(Counter)
    for label, _, mode3 in samples.values():
        if mode3 and mode3.get("shape") in MULTI_RECORD_SHAPES:
            rel = _safe_relative(mode3["file"])
            files.setdefault(rel, _File(mode3["shape"]))
            class_files[label][rel] += 1
    for row in trainset_records(dataset=dataset, report=report):
        label, image, mode3 = samples[row["id"]]
        if mode3:
            record = json.loads(mode3["record"])
            record[mode3.get("output_key") or "output"] = row["response"]
            rel = _safe_relative(mode3["file"])
            target = files.setdefault(rel, _File(mode3.get("shape", "array")))
            target.rows.append(((0, int(mode3.get("position", 0)), row["id"]), record))
            continue
        record = {"id": row["id"], "image": list(row["images"]), "output": row["response"]}
        usual = class_files[label].most_common(1)
        rel = usual[0][0] if usual else default_class_file(label)
        files.setdefault(rel, _File("array")).rows.append(((1, 0, row["id"]), record))
    return files


def _check_target(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise ApplicationError(f"{directory} 已存在且不是目录", code="invalid")
    if directory.is_dir() and any(directory.iterdir()) and not (directory / EXPORT_MARKER).is_file():
        raise ApplicationError(
            f"输出目录 {directory} 已存在且不是 datafix 导出的目录；为了不覆盖其中的文件，请指定一个新的或空的目录",
            code="exists")


def _write_tree(*, dataset: Dataset, folder: Path) -> tuple[TrainsetReport, list[str]]:
    """Write the team layout into the new folder `folder`; returns the report and the files written."""
    report = TrainsetReport(dataset=dataset.name, format=LAYOUT)
    plans = plan_team_files(dataset=dataset, report=report)
    folder.mkdir(parents=True)
    written = []
    for rel, plan in sorted(plans.items()):
        if plan.shape == "object" and not plan.rows:
            continue
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(plan.render() if plan.rows else ("[]\n" if plan.shape == "array" else ""),
                        encoding="utf-8", newline="\n")
        written.append(rel)
    with (folder / ERRORS_FILE).open("w", encoding="utf-8", newline="\n") as handle:
        for chunk in trainset_error_markdown(dataset=dataset):
            handle.write(chunk)
    written.append(ERRORS_FILE)
    (folder / EXPORT_MARKER).write_text(json.dumps(
        {"dataset": dataset.name, "layout": LAYOUT, "files": written}, ensure_ascii=False, indent=2) + "\n",
        encoding="utf-8")
    return report, written


def _swap_into_place(staging: Path, directory: Path) -> None:
    """Rename the finished `staging` folder to `directory`; an earlier export there is removed after."""
    _check_target(directory)  # again: the folder may have changed while we wrote
    old = None
    if directory.is_dir():
        if any(directory.iterdir()):
            old = directory.with_name(files.partial_name(f"old-{directory.name}"))
            directory.rename(old)
        else:
            directory.rmdir()
    os.replace(staging, directory)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class _Staged:
    """The layout written beside `directory` under a `.partial-…` name (removed on the way out unless
    renamed into place); without a directory, in a temporary folder."""

    def __init__(self, directory: Path | None):
        self.directory = directory
        if directory is not None:
            files.make_dirs(directory.parent)
            files.remove_leftovers(directory.parent)
            self.parent = directory.parent
            self.owned_parent = False
        else:
            self.parent = Path(tempfile.mkdtemp(prefix="datafix-team-"))
            self.owned_parent = True
        self.tree = self.parent / files.partial_name(directory.name if directory else "team")

    def __enter__(self) -> "_Staged":
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.tree, ignore_errors=True)
        if self.owned_parent:
            shutil.rmtree(self.parent, ignore_errors=True)


def write_team_layout(*, dataset: Dataset, directory: Path) -> tuple[TrainsetReport, list[str]]:
    """Write the corrected training set of `dataset` into `directory` in the team's layout, without
    recording an export. Returns the report and the files written (relative to `directory`).

    The folder is built beside `directory` under a `.partial-…` name and renamed into place, so it
    is never half-written; an existing `directory` is replaced only if it is an earlier export.
    """
    directory = Path(directory).resolve()
    _check_target(directory)
    with _Staged(directory) as staged:
        report, written = _write_tree(dataset=dataset, folder=staged.tree)
        _swap_into_place(staged.tree, directory)
    return report, written


def _zip_tree(tree: Path, names: list[str], target: Path) -> None:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for rel in names:
            archive.write(tree / rel, arcname=rel)


def team_layout_export(*, dataset: Dataset, directory: Path | None = None, user=None) -> Export:
    """Export the corrected training set in the team's layout through the export service.

    The export (a new folder under EXPORT_ROOT, `pipelines.datasets.exports.export_create`) holds
    `reasonbyQwen72b_model3.zip` (the whole layout) and `trainset_error.md`; `directory` (the
    command line's --output) also gets the layout itself, renamed into place. Staff only when a user
    asks; no eligible row is an error (EmptyExport), like every export.
    """
    if user is not None and not (user.is_authenticated and user.is_staff):
        raise ApplicationError("只有管理员可以导出训练集。", code="forbidden")
    directory = Path(directory).resolve() if directory else None
    if directory is not None:
        _check_target(directory)  # refuse a foreign folder before the export is made
    with _Staged(directory) as staged:
        report, written = _write_tree(dataset=dataset, folder=staged.tree)

        def write(folder: Path) -> ExportContent:
            if not report.rows:
                raise EmptyExport(f"数据集 {dataset.name} 没有可导出的行（待修正 {report.pending}，"
                                  f"标签错误 {report.label_error_count}）：什么也没有写。")
            _zip_tree(staged.tree, written, folder / ARCHIVE_NAME)
            shutil.copyfile(staged.tree / ERRORS_FILE, folder / ERRORS_FILE)
            return ExportContent(row_count=report.rows, report={**report.as_dict(), "files": written})

        export = export_create(
            kind=EXPORT_KIND, fmt=LAYOUT, write=write, user=user, label=f"{dataset.name}-{LAYOUT}",
            params={"dataset": dataset.name, "dataset_id": dataset.pk, "layout": LAYOUT},
        )
        if directory is not None:
            _swap_into_place(staged.tree, directory)
    return export
