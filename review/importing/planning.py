"""Which files an import reads, and how: the team's folder layout (mode folders, the info folder,
train.json, categories.json, JSONL manifests), the class a file or folder name stands for, and the
options of a reading."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath

from core.errors import ApplicationError

from .report import ImportProblem

MODE_FOLDER = re.compile(r"model[_-]?([123])$", re.IGNORECASE)
INFO_FOLDERS = {"info_ectra", "info_extra", "info_extract", "info_extraction"}
TRAIN_FILE = "train.json"
CATEGORIES_FILE = "categories.json"
TEAM_FILE_PREFIX = "save_train_"

# Where a record came from: decides what its keys mean ("output" is reasoning in a mode folder,
# the label in train.json and the info files) and how much its label counts.
MANIFEST, MODE, INFO, TRAIN = "manifest", "mode", "info", "train"
MISSING = "missing"  # a file a job pinned that is no longer there


@dataclass(frozen=True)
class ImportOptions:
    """How to read a folder: where images are now, which encoding non-UTF-8 files use, whether new
    classes may be created."""

    image_root: Path | None = None
    path_prefixes: tuple[tuple[str, str], ...] = ()
    encoding: str | None = None
    create_classes: bool = False


def team_file_class_name(stem: str) -> str:
    """The class a file or folder name stands for: without the batch script's `save_train_` prefix."""
    stem = stem.strip()
    if stem.lower().startswith(TEAM_FILE_PREFIX):
        stem = stem[len(TEAM_FILE_PREFIX):]
    return stem


def read_categories(root: Path) -> list[tuple[str, str]]:
    """Definitions from `<root>/categories.json`, in file order; [] when the file is absent."""
    path = root / CATEGORIES_FILE
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApplicationError(f"categories.json 不是有效的 JSON：{exc}", code="invalid") from exc
    if isinstance(data, dict):
        return [(str(k).strip(), str(v or "").strip()) for k, v in data.items()]
    if isinstance(data, list):
        return [(str(d["name"]).strip(), str(d.get("definition", "")).strip())
                for d in data if isinstance(d, dict) and d.get("name")]
    raise ApplicationError("categories.json 应为 {名称: 定义} 或 [{name, definition}]", code="invalid")


@dataclass(frozen=True)
class SourceFile:
    """One file an import reads, and how: what its records' keys mean (`kind`), the mode of a mode
    folder, the class its folder or name stands for, and where that class name was written."""

    rel: str  # relative to the import root
    kind: str
    mode: int | None = None
    class_name: str = ""
    origin: str = ""  # the class folder ("reasonbyQwen72b_model2/换货/"), else the file itself
    size: int = 0

    @cached_property
    def folder(self) -> str:
        """The folder the file is in, relative to the import root ("." at the root): where its
        records' relative image paths are looked up too."""
        return PurePosixPath(self.rel).parent.as_posix()


@dataclass
class ImportPlan:
    """What `plan_files` found: the import root, the files to read in order, and notes on what is
    not read (each placed before the file it was met before)."""

    root: Path
    files: list[SourceFile]
    notes: list[tuple[int, ImportProblem]] = field(default_factory=list)  # (index of the next file, note)


def plan_files(path: str | Path) -> ImportPlan:
    """The files of a manifest or a folder that an import reads, without opening any of them."""
    path = Path(path)
    if not path.exists():
        raise ApplicationError(f"路径不存在：{path}", code="invalid")
    root = (path.parent if path.is_file() else path).resolve()
    plan = ImportPlan(root=root, files=[])

    def add(file: Path, kind: str, mode: int | None = None, class_name: str = "", origin: str = "") -> None:
        rel = file.relative_to(root).as_posix()
        plan.files.append(SourceFile(rel=rel, kind=kind, mode=mode, class_name=class_name, origin=origin or rel,
                                     size=file.stat().st_size))

    def mode_folder(folder: Path, mode: int) -> None:
        for entry in sorted(folder.iterdir()):
            if entry.is_dir():
                for file in sorted(p for p in entry.rglob("*") if p.is_file()):
                    if file.suffix.lower() in (".json", ".jsonl"):
                        add(file, MODE, mode, team_file_class_name(entry.name), entry.relative_to(root).as_posix() + "/")
            elif entry.suffix.lower() in (".json", ".jsonl"):
                add(entry, MODE, mode, team_file_class_name(entry.stem))

    if path.is_file():
        add(path.resolve(), MANIFEST)
        return plan
    match = MODE_FOLDER.search(root.name)
    if match:  # the path is one mode folder itself
        mode_folder(root, int(match.group(1)))
        return plan
    if (root / TRAIN_FILE).is_file():
        add(root / TRAIN_FILE, TRAIN)
    for entry in sorted(root.iterdir()):
        if entry.is_file():
            if entry.suffix.lower() == ".jsonl":
                add(entry, MANIFEST)
            elif entry.suffix.lower() == ".json" and entry.name not in (TRAIN_FILE, CATEGORIES_FILE):
                plan.notes.append((len(plan.files), ImportProblem(
                    entry.name, "未读取：不是 train.json、categories.json 或 *.jsonl 清单")))
            continue
        match = MODE_FOLDER.search(entry.name)
        if match:
            mode_folder(entry, int(match.group(1)))
        elif entry.name.lower() in INFO_FOLDERS:
            for file in sorted(p for p in entry.rglob("*") if p.is_file() and p.suffix.lower() in (".json", ".jsonl")):
                add(file, INFO)
        elif any(p.suffix.lower() in (".json", ".jsonl") for p in entry.rglob("*")):
            plan.notes.append((len(plan.files), ImportProblem(
                f"{entry.name}/", "未读取：目录名没有模式编号（应为 reasonbyQwen72b_model1/2/3）也不是 info_ectra")))
    return plan
