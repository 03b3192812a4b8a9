"""The one export path: every export is a new folder under EXPORT_ROOT and an Export row.

    export = export_create(
        kind="dpo", fmt="trl_preference", user=request.user, label="job12",
        params={"job_id": 12},
        write=lambda folder: ExportContent(...),   # writes its files into `folder`
    )

`write` gets an empty folder and writes the export's files into it (through the dataset builder or
`pipelines.datasets.formats`), returning an `ExportContent`: how many rows, the dataset_info entries, a report.
The service then

* writes `dataset_info.json` from those entries (LLaMA-Factory reads the folder as its dataset_dir);
* refuses an export with no rows (an empty file, or a dataset_info entry for one, fails at training
  time) — nothing is kept and no row is recorded;
* renames the folder, written as `.partial-…`, to its final unique name: a killed export leaves no
  folder that looks finished, and no export ever writes into another's folder;
* records the Export: kind, format, folder relative to EXPORT_ROOT, file names, dataset_info,
  row count, report, params and who made it.

`deliver(export, output)` copies a finished export's files to a path a command-line user named
(`--output`), merging its entries into the dataset_info.json there. `export_file(user, export_id,
name)` is the single download rule: staff may download every export, anyone else only exports
recorded under their own name, and only files the export lists. `build_export(sources, options, …)`
runs the dataset builder into a new export folder through `export_create`.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from config.timestamps import local_timestamp
from core.errors import ApplicationError

from core import files

from . import formats
from .builder import build_dataset
from .options import BuildOptions, BuildResult, Source

DATASET_INFO = "dataset_info.json"


@dataclass
class ExportContent:
    """What a writer put in the export folder."""

    row_count: int
    dataset_info: dict = field(default_factory=dict)  # {dataset name: LLaMA-Factory entry}
    report: dict = field(default_factory=dict)


class EmptyExport(ApplicationError):
    def __init__(self, message: str = "没有可导出的行：未写入文件，也未写入 dataset_info.json。"):
        super().__init__(message, code="empty_export")


def export_root() -> Path:
    return Path(settings.EXPORT_ROOT)


def safe_name(text: str, default: str = "export") -> str:
    """A file-name-safe label (letters, digits, CJK, - and _), at most 60 characters."""
    cleaned = re.sub(r"[^\w\-]+", "_", str(text or ""), flags=re.UNICODE).strip("_.")[:60]
    return cleaned or default


def _new_folder_name(label: str) -> str:
    stamp = local_timestamp()  # TIME_ZONE, as the pages show the export's time
    return f"{stamp}-{secrets.token_hex(3)}" + (f"-{safe_name(label)}" if label else "")


def export_create(*, kind: str, fmt: str, write: Callable[[Path], ExportContent], user=None,
                  params: dict | None = None, label: str = ""):
    """Make a new export folder, let `write` fill it, record it; returns the Export row.

    The folder is written outside any transaction (a long write must not hold the database). Errors
    from `write` (and an empty export) leave nothing behind.
    """
    from pipelines.models import Export

    parent = files.make_dirs(export_root() / safe_name(kind))
    files.remove_leftovers(parent)
    final_name = _new_folder_name(label)
    work = parent / files.partial_name(final_name)
    work.mkdir()
    try:
        content = write(work)
        if not content.row_count:
            raise EmptyExport()
        if content.dataset_info:
            formats.write_dataset_info(work / DATASET_INFO, content.dataset_info)
        names = sorted(p.name for p in work.iterdir() if p.is_file())
        final = parent / final_name
        os.rename(work, final)  # unique name: never onto another export's folder
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    try:
        return Export.objects.create(
            kind=kind, format=fmt, params=params or {}, report=content.report,
            created_by=user if user is not None and getattr(user, "is_authenticated", False) else None,
            row_count=content.row_count, path=str(final.relative_to(export_root())), files=names,
            dataset_info=content.dataset_info,
        )
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)  # no folder without its row
        raise


def export_folder(export) -> Path:
    """The export's folder, confined to EXPORT_ROOT (ApplicationError "not_found" otherwise)."""
    root = export_root().resolve()
    folder = (root / export.path).resolve() if export.path else root
    if folder == root or not folder.is_relative_to(root) or not folder.is_dir():
        raise ApplicationError("导出文件不存在或不在导出目录中。", code="not_found")
    return folder


def export_path(export, name: str) -> Path:
    """One file the export lists, confined to its folder (ApplicationError "not_found" otherwise)."""
    if name not in (export.files or []):
        raise ApplicationError("导出中没有这个文件。", code="not_found")
    folder = export_folder(export)
    path = (folder / name).resolve()
    if path.parent != folder or not path.is_file():
        raise ApplicationError("导出文件不存在或不在导出目录中。", code="not_found")
    return path


# Files an export writes beside its training data.
SIDE_FILES = (DATASET_INFO, "provenance.jsonl")
SIDE_SUFFIXES = ("_report.json", "_sources.jsonl")


def data_files(export) -> list[str]:
    """The export's training files: those its dataset_info entries name, in entry order, or (for
    formats LLaMA-Factory has no entry for) every file that is not a report or side file."""
    named = [entry.get("file_name") for entry in (export.dataset_info or {}).values()]
    found = [n for n in named if n in (export.files or [])]
    if found:
        return found
    return [n for n in export.files or [] if n not in SIDE_FILES and not n.endswith(SIDE_SUFFIXES)]


def visible_exports(*, user):
    """The one permission rule: staff see and download every export, anyone else only their own."""
    from pipelines.models import Export

    qs = Export.objects.select_related("created_by").order_by("-created_at", "-id")
    if not (user and user.is_authenticated):
        return qs.none()
    return qs if user.is_staff else qs.filter(created_by=user)


def export_file(*, user, export_id: int, name: str) -> Path:
    """The file `name` of export `export_id` if `user` may download it; ApplicationError "not_found"
    otherwise (the same answer whether the export is someone else's or does not exist)."""
    export = visible_exports(user=user).filter(pk=export_id).first()
    if export is None:
        raise ApplicationError("导出不存在。", code="not_found")
    return export_path(export, name)


def deliver(export, output: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Copy a finished export's files to where a command-line user asked (`--output FILE`).

    The data files keep the names they have in the export (the command names them after `output`),
    go to `output`'s folder and are written atomically; `overwrite=False` refuses to replace an
    existing file. The export's dataset_info entries are merged into the dataset_info.json there
    (a same-named entry pointing elsewhere is refused before anything is copied).
    """
    target = Path(output).parent
    folder = export_folder(export)
    names = [n for n in export.files if n != DATASET_INFO]
    if not overwrite:
        existing = [str(target / n) for n in names if (target / n).exists()]
        if existing:
            raise ApplicationError(f"已存在，未覆盖：{', '.join(existing)}（换一个 --output 或加 --overwrite）",
                                   code="exists")
    if export.dataset_info:
        formats.check_dataset_info(target / DATASET_INFO, export.dataset_info)
    written = []
    for name in names:
        with open(folder / name, "rb") as src, files.atomic_open(target / name, "wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
        written.append(target / name)
    if export.dataset_info:
        formats.write_dataset_info(target / DATASET_INFO, export.dataset_info)
    return written


def build_export(sources: Iterable[Source], options: BuildOptions, *, kind: str, file_name: str, user=None,
                 params: dict | None = None, label: str = "", extra_report: Callable[[], dict] | None = None,
                 progress: Callable[[str, int], None] | None = None):
    """Build a dataset into a new export folder (`export_create`) and record it.

    `file_name` is the data file's name in the folder (split files get `_train`, `_val`, `_test`).
    The report's file paths are names inside the folder. `extra_report()` is merged into the report
    after the build (counts a source kept while it was read). Returns (Export, BuildResult).
    """
    results: list[BuildResult] = []

    def write(folder: Path) -> ExportContent:
        result = build_dataset(sources, options, output=folder / file_name, progress=progress)
        for key in ("report_file", "sources_file"):
            result.report[key] = Path(result.report[key]).name
        result.report["files"] = {split: Path(p).name for split, p in result.report["files"].items()}
        result.files = dict(result.report["files"])
        if extra_report:
            result.report.update(extra_report())
        results.append(result)
        return ExportContent(row_count=result.total, dataset_info=result.report["dataset_info"], report=result.report)

    export = export_create(kind=kind, fmt=options.format, write=write, user=user,
                           params=params if params is not None else options.describe(), label=label)
    return export, results[0]
