"""Reading classification results from disk into a dataset: the team's folders as their scripts
write them (seed 004), or a JSONL manifest. `import_classification` is the entry point.

What is read under the import root (a folder; a single `.jsonl` file works too):

- `reasonbyQwen72b_model{1,2,3}/` — the model's reasoning per mode: `<class>/*.json` or `<class>.json`,
  each file one record or a list of records (any shape `core.jsonfiles` reads). The class is the
  class folder's name, or the file name without the batch script's `save_train_` prefix (where
  spaces and parentheses became `_`); records `{"id", "image": path or [path], "output"}`.
- `info_ectra/` (or `info_extra/`) — the info-extraction files: `{"id", "image", "output": <label>,
  "picture2text": <description>}`, one `json.dumps(record) + ",\\n"` per line.
- `train.json` — the labels (`{"id", "image", "output": <label>}`): the label of every sample it
  names, checked against the class each reasoning was filed under. Records of other tasks in it
  (labels that are no class of the import) are counted and left alone.
- `*.jsonl` manifests — `{"id", "image", "label", "outputs": {"1": …, "2": …, "3": …}, "model",
  "image_info"}`.
- `categories.json` — class names and definitions: `{"换货页面": "定义…"}` or `[{"name", "definition"}]`.

Rules (the issue "The team's own files, in and out"):

- Never misfile: every class name must denote a known class (the dataset's, `categories.json`'s),
  after the shortening rules (`save_train_` prefix, `_` for spaces/parentheses, a dropped
  parenthesised part, an unambiguous shortened name). Otherwise nothing is imported and the error
  lists the names with the closest known ones; new classes are created only with `create_classes`
  (named as train.json names them when it does).
- Never collide or erase: stored images are named by id and content (`core.images.store_image`);
  a field a record lacks keeps what is stored; the same id twice in one mode is reported, the first
  kept.
- Bad input loses nothing: each bad record is reported with `file:line` (or `file#index`) and
  skipped, the rest imported; absolute image paths from another machine are mapped with
  `image_root` / `path_prefixes`, and without them reported once, with the fix.

How it runs (`ClassificationImport`), so that memory stays flat and reviewers are never blocked:

1. every file is streamed (`core.jsonfiles`) and each record checked and staged in a scratch SQLite
   file of its own (IMPORT_STAGING_ROOT), with its problems and label names;
2. the class names are resolved from the staged names — refusing before anything is written — and
   the samples ordered as their first record was read;
3. IMPORT_BATCH_SAMPLES samples at a time are assembled from their staged records, their images
   checked and stored by IMPORT_IMAGE_WORKERS threads (the next batch's while this one is written),
   and written through `review.services.classification_records_save` in transactions of about
   TRANSACTION_SECONDS each. Writing is idempotent by (dataset, id): an interrupted import keeps
   what it committed and finishes when run again.
"""
from __future__ import annotations

import difflib
import json
import os
import re
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from django.conf import settings
from django.db import transaction

from core.errors import ApplicationError
from core.images import confine_path, store_image
from core.jsonfiles import RawRecord, iter_record_file
from review.models import Dataset, Sample
from review.parsing import match_category_name, normalize_name
from review.services import ClassificationRecord, RecordsSaveResult, classification_records_save

MODE_FOLDER = re.compile(r"model[_-]?([123])$", re.IGNORECASE)
INFO_FOLDERS = {"info_ectra", "info_extra", "info_extract", "info_extraction"}
TRAIN_FILE = "train.json"
CATEGORIES_FILE = "categories.json"
TEAM_FILE_PREFIX = "save_train_"
ID_KEYS = ("id", "sample_id", "external_id")
IMAGE_KEYS = ("image", "image_path", "img", "images")
LABEL_KEYS = ("label", "class", "category")
OUTPUT_KEYS = ("output", "response", "answer")
DESCRIPTION_KEYS = ("picture2text", "description")
# Database column sizes (review.models): longer values are refused on their line, not truncated.
MAX_ID_CHARS = Sample._meta.get_field("external_id").max_length
MAX_NAME_CHARS = 200
MAX_IMAGE_PATH_CHARS = 1000

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


@dataclass
class ImportProblem:
    location: str  # "file:line" or "file#index" relative to the import root
    message: str

    def __str__(self):
        return f"{self.location}: {self.message}"


@dataclass
class ImportReport:
    records_read: int = 0
    samples_imported: int = 0
    saved: RecordsSaveResult = field(default_factory=RecordsSaveResult)
    # Records not imported (or imported differently than written), each with where and why.
    problems: list[ImportProblem] = field(default_factory=list)
    # What was fixed or left alone on the way (NUL characters removed, other tasks in train.json …).
    notes: list[ImportProblem] = field(default_factory=list)
    classes_created: list[str] = field(default_factory=list)
    prompt_recorded: bool = False
    # How many problems and notes there are: the lists hold the first MAX_LISTED_FINDINGS of each.
    problems_total: int = 0
    notes_total: int = 0

    def summary_lines(self) -> list[str]:
        """A human summary, one fact per line, then each problem and note."""
        s = self.saved
        lines = [
            f"读取记录 {self.records_read} 条，导入样本 {self.samples_imported} 个",
            f"样本：新建 {s.samples_created}，更新 {s.samples_updated}；推理：新建 {s.reasonings_created}，"
            f"更新 {s.reasonings_updated}；新建类别 {len(self.classes_created)}"
            + (f"（{'、'.join(self.classes_created)}）" if self.classes_created else ""),
        ]
        if self.prompt_recorded:
            lines.append("已记录团队的模式3提示词（导出训练集时用作 instruction）")
        if not self.problems and not self.notes:
            lines.append("没有问题")
        for title, unit, listed, total in (("问题", "个", self.problems, self.problems_total),
                                           ("说明", "条", self.notes, self.notes_total)):
            total = max(total, len(listed))
            if total:
                lines.append(f"{title} {total} {unit}" + (f"（列出前 {len(listed)} {unit}）" if total > len(listed) else "")
                             + "：")
                lines += [f"  - {p}" for p in listed]
        return lines


# --------------------------------------------------------------------------- class names
def team_file_class_name(stem: str) -> str:
    """The class a file or folder name stands for: without the batch script's `save_train_` prefix."""
    stem = stem.strip()
    if stem.lower().startswith(TEAM_FILE_PREFIX):
        stem = stem[len(TEAM_FILE_PREFIX):]
    return stem


def _underscored(name: str) -> str:
    """A class name as the batch script put it in a file name (spaces and parentheses → `_`)."""
    return re.sub(r"[\s()（）]", "_", name)


def resolve_class_name(name: str, known: Sequence[str]) -> str | None:
    """The one class of `known` that `name` denotes after the shortening rules, else None."""
    name = team_file_class_name(name)
    if not name:
        return None
    if name in known:
        return name
    underscored = [k for k in known if _underscored(k) == name or _underscored(k).strip("_") == name.strip("_")]
    if len(underscored) == 1:
        return underscored[0]
    return match_category_name(name, list(known))


def closest_class_names(name: str, known: Sequence[str], n: int = 3) -> list[str]:
    """Up to `n` known names that look most like `name` (for an error message)."""
    by_norm: dict[str, str] = {}
    for k in known:
        by_norm.setdefault(normalize_name(_underscored(k).replace("_", " ")) or k, k)
    wanted = normalize_name(team_file_class_name(name).replace("_", " "))
    return [by_norm[m] for m in difflib.get_close_matches(wanted, list(by_norm), n=n, cutoff=0.34)]


# --------------------------------------------------------------------------- image paths
def _absolute_parts(written: str) -> tuple[str, ...] | None:
    """The parts below the anchor of a path written absolute on some machine, else None."""
    text = written.strip()
    if re.match(r"^[A-Za-z]:[\\/]", text) or text.startswith("\\\\"):
        return PureWindowsPath(text).parts[1:]
    if text.startswith("/"):
        return PurePosixPath(text).parts[1:]
    return None


def _find_below(folder: Path, parts: Sequence[str]) -> Path | None:
    """The file `folder/<parts[i:]>` for the longest tail of `parts` that exists, confined to `folder`."""
    for i in range(len(parts)):
        tail = parts[i:]
        if any(part in ("", ".", "..") for part in tail) or not folder.joinpath(*tail).is_file():
            continue  # a cheap stat first; only the file found is resolved and confined
        try:
            return confine_path(folder, "/".join(tail))
        except ApplicationError:
            continue
    return None


class _FilesByName:
    """The files under a folder by name, indexed on first use (in the import's staging file, not in
    memory): an image found by its name alone when its folders differ from the ones written in the
    record (only if the name is unique)."""

    def __init__(self, folder: Path, staging: _Staging):
        self.folder = folder
        self.staging = staging
        self.built = False

    def find(self, name: str) -> Path | None:
        with self.staging.lock:
            db = self.staging.db
            if not self.built:
                db.execute("DELETE FROM image_names")
                batch = []
                for path in self.folder.rglob("*"):
                    if path.is_file():
                        batch.append((path.name, path.relative_to(self.folder).as_posix()))
                        if len(batch) >= 10000:
                            db.executemany("INSERT INTO image_names (name, path) VALUES (?, ?)", batch)
                            batch = []
                db.executemany("INSERT INTO image_names (name, path) VALUES (?, ?)", batch)
                db.execute("CREATE INDEX IF NOT EXISTS image_names_by_name ON image_names (name)")
                self.built = True
            hits = [self.folder / rel for (rel,) in db.execute(
                "SELECT path FROM image_names WHERE name = ? ORDER BY path", (name,))]
            total = len(hits)
        if total > 1:
            shown = "、".join(h.relative_to(self.folder).as_posix() for h in hits[:3])
            raise ApplicationError(f"--image-root 下有 {total} 个 {name}（{shown}），无法确定是哪一个", code="image_invalid")
        if hits and hits[0].resolve().is_relative_to(self.folder):
            return hits[0]
        return None


class _Unmapped(Exception):
    """An absolute path from another machine and nothing given to map it."""


def locate_image(written: str, *, root: Path, base: Path, options: ImportOptions,
                 by_name: _FilesByName | None = None) -> Path:
    """The file an image path in a record means on this machine; ApplicationError if none.

    Relative paths are looked up under the import root, then the record's own folder, then
    `image_root`. Absolute paths (`E:\\…`, `/data/…`) go through `path_prefixes` (OLD=NEW), then are
    looked up under `image_root` by their longest tail that exists there, then by file name alone
    (`by_name`, when unique); every path is confined to the folder it is looked up in. An absolute
    path with neither option raises `_Unmapped`.
    """
    parts = _absolute_parts(written)
    if parts is not None:
        normalized = written.strip().replace("\\", "/")
        for old, new in options.path_prefixes:
            old_norm = old.replace("\\", "/").rstrip("/")
            windows = "\\" in old or re.match(r"^[A-Za-z]:", old)
            head = normalized[:len(old_norm)]
            if (head.casefold() == old_norm.casefold()) if windows else (head == old_norm):
                rest = normalized[len(old_norm):]
                if rest == "" or rest.startswith("/"):
                    return confine_path(new, rest.lstrip("/"))
        if options.image_root is None:
            raise _Unmapped(written)
        found = _find_below(options.image_root, parts) or (by_name.find(parts[-1]) if by_name and parts else None)
        if found is None:
            raise ApplicationError(f"在 --image-root {options.image_root} 下找不到图片 {parts[-1] if parts else written}"
                                   f"（原路径 {written}）", code="image_invalid")
        return found
    first = confine_path(root, written)
    if first.is_file():
        return first
    if base != root:
        second = confine_path(root, f"{base.relative_to(root).as_posix()}/{written}")
        if second.is_file():
            return second
    if options.image_root is not None:
        parts = PurePosixPath(written.replace("\\", "/")).parts
        found = _find_below(options.image_root, parts) or (by_name.find(parts[-1]) if by_name and parts else None)
        if found is not None:
            return found
    return first  # missing: store_image reports it


# --------------------------------------------------------------------------- reading
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


# --------------------------------------------------------------------------- which files
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


# --------------------------------------------------------------------------- reading one record
def _first(record: dict, keys: tuple[str, ...]) -> tuple[str, Any]:
    for key in keys:
        if key in record and record[key] not in (None, "", []):
            return key, record[key]
    return "", None


class _Rejected(Exception):
    """A record that cannot be imported; the message says why (prefixed with its id when known)."""


def _check_record(raw: RawRecord, file: SourceFile, notes: list[str]) -> tuple[str, dict]:
    """(external id, what the import keeps of the record) for a record of `file`; _Rejected if it
    cannot be imported. What is kept is JSON: it is staged on disk until the sample is assembled."""
    kind, record = file.kind, raw.value
    if not isinstance(record, dict):
        raise _Rejected("记录应为 JSON 对象")
    _, external_id = _first(record, ID_KEYS)
    if external_id is None or isinstance(external_id, (dict, list, bool)) or not str(external_id).strip():
        raise _Rejected("缺少 id")
    external_id = str(external_id).strip()
    if len(external_id) > MAX_ID_CHARS:
        raise _Rejected(f"id 过长（{len(external_id)} 字符，上限 {MAX_ID_CHARS}）")
    who = f"{external_id}："

    # The label: "output" is the label in train.json and the info files, the reasoning elsewhere.
    label_keys = LABEL_KEYS + (("output",) if kind in (INFO, TRAIN) else ())
    _, written_label = _first(record, label_keys)
    label = file.class_name if written_label is None else written_label
    if label is None or (kind == MANIFEST and isinstance(label, str) and not label.strip()):
        raise _Rejected(f"{who}缺少 label")
    if not isinstance(label, str):
        raise _Rejected(f"{who}标签应为文本")
    label = label.strip()
    if len(label) > MAX_NAME_CHARS:
        raise _Rejected(f"{who}标签过长（{len(label)} 字符，上限 {MAX_NAME_CHARS}）")

    outputs, output_key = _outputs(record, kind=kind, mode=file.mode, who=who)
    limit = settings.IMPORT_MAX_TEXT_CHARS
    for m, text in outputs.items():
        if len(text) > limit:
            raise _Rejected(f"{who}模式{m}的输出过长（{len(text)} 字符，上限 {limit}，设置 IMPORT_MAX_TEXT_CHARS）")

    image_key, image = _first(record, IMAGE_KEYS)
    if isinstance(image, list):
        if not all(isinstance(i, str) for i in image):
            raise _Rejected(f"{who}{image_key} 应为路径或路径列表")
        if len(image) > 1:
            notes.append(f"{who}有 {len(image)} 张图片，页面上显示第一张（导出时原样写回）")
        image = image[0] if image else None
    if image is not None and not isinstance(image, str):
        raise _Rejected(f"{who}{image_key} 应为路径或路径列表")
    if image is not None and len(image) > MAX_IMAGE_PATH_CHARS:
        raise _Rejected(f"{who}图片路径过长（{len(image)} 字符）")

    description = None
    _, text = _first(record, DESCRIPTION_KEYS)
    if text is not None:
        if not isinstance(text, str):
            raise _Rejected(f"{who}picture2text 应为文本")
        if len(text) > limit:
            raise _Rejected(f"{who}图片描述过长（{len(text)} 字符，上限 {limit}，设置 IMPORT_MAX_TEXT_CHARS）")
        description = text

    model = record.get("model") or record.get("model_name") or ""
    if not isinstance(model, str) or len(model) > MAX_NAME_CHARS:
        raise _Rejected(f"{who}model 应为不超过 {MAX_NAME_CHARS} 字符的文本")

    kept: dict[str, Any] = {"loc": raw.location, "label": label, "image": image or ""}
    if kind == TRAIN:
        return external_id, kept
    # A label written in the record names itself; otherwise the class folder or file does.
    kept["where"] = raw.location if written_label is not None else file.origin
    if outputs:
        kept["outputs"] = outputs
    if model:
        kept["model"] = model
    if record.get("image_info") is not None:
        kept["image_info"] = record["image_info"]
    if description is not None:
        kept["description"] = description
    if kind == MODE and output_key:
        as_written = dict(record)
        as_written[output_key] = None  # the output itself lives in the Reasoning row
        kept["prov"] = {"position": raw.position, "output_key": output_key,
                        "record": json.dumps(as_written, ensure_ascii=False)}
    return external_id, kept


def _outputs(record: dict, *, kind: str, mode: int | None, who: str) -> tuple[dict[str, str], str]:
    """(mode → output, the key it was under) of a record; _Rejected when they are unusable."""
    outputs: dict[str, Any] = {}
    key = ""
    if kind == MODE:
        _, output = _first(record, OUTPUT_KEYS)
        if output is not None:
            outputs[str(mode)] = output
        key = next((k for k in OUTPUT_KEYS if k in record), "output")
    elif kind == MANIFEST:
        given = record.get("outputs") or {}
        if not isinstance(given, dict):
            raise _Rejected(f"{who}outputs 应为 {{\"1\": …, \"2\": …, \"3\": …}}")
        for k, value in given.items():
            if str(k) not in {"1", "2", "3"}:
                raise _Rejected(f"{who}未知的模式 {k}")
            if value is not None:
                outputs[str(k)] = value
        for m in (1, 2, 3):
            if record.get(f"mode{m}") is not None:
                outputs[str(m)] = record[f"mode{m}"]
    if any(not isinstance(v, str) for v in outputs.values()):
        raise _Rejected(f"{who}输出必须是文本")
    return outputs, key


# --------------------------------------------------------------------------- the staging file
# Record sequence numbers: file i's records are (i + 1) * FILE_SEQ + their position, so every
# record, and every problem found about it, sorts in reading order; re-reading a file reuses them.
FILE_SEQ = 1 << 32
LAST_SEQ = 1 << 62


def _file_seq(index: int) -> int:
    return (index + 1) * FILE_SEQ


class _Staging:
    """An import's records and findings on disk, in a private SQLite file (not the application's
    database): memory stays flat however many records there are, and a job that runs in several
    processes (`review.jobs.classification_import`) picks up where the last one stopped."""

    SCHEMA = """
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE IF NOT EXISTS files (no INTEGER PRIMARY KEY, shape TEXT, encoding_used TEXT,
                                          records INTEGER);
        CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, external_id TEXT NOT NULL,
                                            file_no INTEGER NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS labels (name TEXT, kind TEXT, origin TEXT, file_no INTEGER, seq INTEGER,
                                           UNIQUE (name, kind, origin, file_no));
        CREATE TABLE IF NOT EXISTS findings (seq INTEGER, stage TEXT, note INTEGER, location TEXT, message TEXT);
        CREATE INDEX IF NOT EXISTS findings_by_stage ON findings (stage);
        CREATE INDEX IF NOT EXISTS findings_by_seq ON findings (note, seq);
        CREATE TABLE IF NOT EXISTS samples (ordinal INTEGER PRIMARY KEY, external_id TEXT UNIQUE);
        CREATE TABLE IF NOT EXISTS batches (k INTEGER PRIMARY KEY, result TEXT);
        CREATE TABLE IF NOT EXISTS unmapped (seq INTEGER PRIMARY KEY, batch INTEGER, image TEXT, location TEXT);
        CREATE TABLE IF NOT EXISTS image_names (name TEXT, path TEXT);
    """

    def __init__(self, path: Path):
        self.path = path
        # Image lookups run in worker threads: one connection, serialised by a lock.
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.lock = threading.RLock()
        self.db.execute("PRAGMA journal_mode=OFF")  # a scratch file: a crash means reading again
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("PRAGMA cache_size=-16000")  # 16 MB
        self.db.execute("PRAGMA temp_store=FILE")
        self.db.executescript(self.SCHEMA)

    def close(self) -> None:
        self.db.close()

    def get(self, key: str, default: Any = None) -> Any:
        with self.lock:
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def put(self, key: str, value: Any) -> None:
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                            (key, json.dumps(value, ensure_ascii=False)))

    def add_findings(self, stage: str, rows: list[tuple[int, bool, str, str]]) -> None:
        """Problems and notes (seq, is_note, location, message) found at `stage` (replacing what an
        earlier run of that stage found)."""
        with self.lock:
            self.db.executemany("INSERT INTO findings (seq, stage, note, location, message) VALUES (?, ?, ?, ?, ?)",
                                [(seq, stage, int(note), location, message) for seq, note, location, message in rows])

    def clear_stage(self, stage: str) -> None:
        with self.lock:
            self.db.execute("DELETE FROM findings WHERE stage = ?", (stage,))

    def findings(self, *, note: bool, limit: int) -> tuple[list[ImportProblem], int]:
        with self.lock:
            total = self.db.execute("SELECT COUNT(*) FROM findings WHERE note = ?", (int(note),)).fetchone()[0]
            rows = self.db.execute("SELECT location, message FROM findings WHERE note = ? ORDER BY seq, rowid LIMIT ?",
                                   (int(note), limit)).fetchall()
        return [ImportProblem(location, message) for location, message in rows], total


MAX_LISTED_FINDINGS = 1000  # problems (and notes) listed one by one in a report; all are counted
TRANSACTION_SECONDS = 0.2  # how long one write transaction of an import should last …
MIN_CHUNK = 20  # … unless that is fewer samples than this


# --------------------------------------------------------------------------- assembling a sample
@dataclass
class _Label:
    name: str
    kind: str
    location: str
    seq: int


@dataclass
class _Pending:
    """A sample being assembled from the records that name it (one per mode, info, train.json …)."""

    external_id: str
    labels: list[_Label] = field(default_factory=list)
    images: list[tuple[str, str, str, int]] = field(default_factory=list)  # (as written, base dir, location, seq)
    outputs: dict[int, str] = field(default_factory=dict)
    output_locations: dict[int, str] = field(default_factory=dict)
    model_names: dict[int, str] = field(default_factory=dict)
    image_info: Any = None
    description: str | None = None
    description_location: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    train: _Label | None = None
    train_images: list[tuple[str, str, str, int]] = field(default_factory=list)
    has_records: bool = False  # records other than train.json's name it


@dataclass
class BatchOutcome:
    """What one batch stored: the counts, and the records handed to the database (prepared)."""

    records: list[ClassificationRecord] = field(default_factory=list)
    saved: RecordsSaveResult = field(default_factory=RecordsSaveResult)
    others: Counter = field(default_factory=Counter)

    def as_json(self) -> dict:
        return {"samples": len(self.records), "saved": asdict(self.saved), "others": dict(self.others)}


@dataclass
class ImportProgress:
    """Where a running import is: reading files (`done`/`total` in bytes), then saving samples."""

    phase: str  # "read" | "save"
    done: int
    total: int


# --------------------------------------------------------------------------- the import
class ClassificationImport:
    """One import of a folder or manifest into a dataset, in steps that each take bounded time and
    memory: `read_file(i)` for every file (records staged on disk), `prepare()` (classes resolved,
    the dataset created; refuses before anything is written), then `prepare_batch(k)` (samples
    assembled, images checked and stored, outside any transaction) and `save_batch(k, …)` (one
    short transaction through `classification_records_save`) for every batch, and `report()`.

    Each step can run again (a re-delivered job item): a file's records replace what its earlier
    reading staged, and saving is idempotent by (dataset, id). `import_classification` runs the
    steps in one process; the "classification_import" job runs them as job items.
    """

    def __init__(self, *, path: str | Path, dataset_name: str, staging_path: str | Path,
                 image_root: str | Path | None = None, path_prefixes: Sequence[tuple[str, str]] = (),
                 encoding: str | None = None, create_classes: bool = False, prompt_file: str | Path | None = None,
                 batch_size: int | None = None, files: Sequence[str] | None = None):
        self.options = ImportOptions(
            image_root=Path(image_root).resolve() if image_root else None,
            path_prefixes=tuple((old, str(Path(new).resolve())) for old, new in path_prefixes),
            encoding=_check_encoding(encoding),
            create_classes=create_classes,
        )
        if self.options.image_root is not None and not self.options.image_root.is_dir():
            raise ApplicationError(f"--image-root 不是目录：{image_root}", code="invalid")
        self.path = Path(path)
        self.dataset_name = dataset_name
        self.prompt_file = prompt_file
        self.plan = plan_files(self.path)
        if files is not None:
            # The files a job pinned when it was created: the same list (and numbering) in every process.
            found = {f.rel: f for f in self.plan.files}
            self.plan.files = [found.get(rel) or SourceFile(rel=rel, kind=MISSING) for rel in files]
        self.root = self.plan.root
        self.batch_size = batch_size or settings.IMPORT_BATCH_SAMPLES
        self.staging = _Staging(Path(staging_path))
        self._by_name: _FilesByName | None = None
        self._chunk = min(self.batch_size, 200)  # samples per transaction, adapted as they are written

    def close(self) -> None:
        self.staging.close()

    @property
    def files(self) -> list[SourceFile]:
        return self.plan.files

    # ---- reading
    def read_file(self, index: int, *, on_bytes=None) -> int:
        """Stage the records of file `index` (replacing an earlier reading of it); returns how many
        records it has. `on_bytes(n)` is told how far reading got, now and then."""
        file = self.files[index]
        base_seq = _file_seq(index)
        db, stage = self.staging.db, f"file:{index}"
        if file.kind == MISSING:
            self.staging.clear_stage(stage)
            self.staging.add_findings(stage, [(base_seq, False, file.rel, "文件已不存在（任务创建之后被移走或删除）")])
            db.execute("INSERT OR REPLACE INTO files (no, shape, encoding_used, records) VALUES (?, '', 'utf-8', 0)",
                       (index,))
            return 0
        db.execute("BEGIN")
        db.execute("DELETE FROM records WHERE file_no = ?", (index,))
        db.execute("DELETE FROM labels WHERE file_no = ?", (index,))
        self.staging.clear_stage(stage)
        stream = iter_record_file(self.root / file.rel, file.rel, encoding=self.options.encoding,
                                  force_lines=file.rel.lower().endswith(".jsonl"))
        findings: list[tuple[int, bool, str, str]] = []
        rows: list[tuple] = []
        labels: list[tuple] = []
        count = 0
        hard = file.kind in (MODE, MANIFEST)
        for raw in stream:
            seq = base_seq + raw.position
            count += 1
            for note in raw.notes:
                findings.append((seq, True, raw.location, note))
            if not raw.ok:
                findings.append((seq, False, raw.location, raw.error))
                continue
            notes: list[str] = []
            try:
                external_id, kept = _check_record(raw, file, notes)
            except _Rejected as exc:
                findings.append((seq, False, raw.location, str(exc)))
                continue
            findings.extend((seq, True, raw.location, note) for note in notes)
            rows.append((seq, external_id, index, file.kind, json.dumps(kept, ensure_ascii=False, separators=(",", ":"))))
            if kept["label"]:
                labels.append((kept["label"], file.kind, kept["where"] if hard else "", index, seq))
            if len(rows) >= 5000:
                self._stage_rows(rows, labels)
                rows, labels = [], []
                if on_bytes is not None:
                    on_bytes(count)
        if stream.error:
            findings.append((base_seq, False, file.rel, stream.error))
        self._stage_rows(rows, labels)
        if stream.encoding_used != "utf-8":
            findings.append((LAST_SEQ - FILE_SEQ + index, True, file.rel, f"不是 UTF-8 的行按 {self.options.encoding} 读取"))
        self.staging.add_findings(stage, findings)
        db.execute("INSERT OR REPLACE INTO files (no, shape, encoding_used, records) VALUES (?, ?, ?, ?)",
                   (index, stream.shape, stream.encoding_used, count))
        db.execute("COMMIT")
        return count

    def _stage_rows(self, rows: list[tuple], labels: list[tuple]) -> None:
        self.staging.db.executemany("INSERT OR REPLACE INTO records (seq, external_id, file_no, kind, data) "
                                    "VALUES (?, ?, ?, ?, ?)", rows)
        self.staging.db.executemany("INSERT OR IGNORE INTO labels (name, kind, origin, file_no, seq) "
                                    "VALUES (?, ?, ?, ?, ?)", labels)

    def files_read(self) -> set[int]:
        return {no for (no,) in self.staging.db.execute("SELECT no FROM files")}

    # ---- the plan
    def prepare(self) -> int:
        """Resolve the classes, order the samples and create the dataset if it is missing; returns
        the number of batches. Raises ApplicationError — with nothing written — when no record was
        found, or when class names would need new classes and `create_classes` is False."""
        db = self.staging.db
        self.staging.clear_stage("plan")
        self.staging.add_findings("plan", [(_file_seq(index) - 1, True, note.location, note.message)
                                           for index, note in self.plan.notes])
        missing = [i for i in range(len(self.files)) if i not in self.files_read()]
        for index in missing:  # a job whose reading items did not all run (e.g. retried out of order)
            self.read_file(index)
        records_read = db.execute("SELECT COALESCE(SUM(records), 0) FROM files").fetchone()[0]
        problems = db.execute("SELECT COUNT(*) FROM findings WHERE note = 0").fetchone()[0]
        if records_read == 0 and not problems:
            raise ApplicationError(
                f"{self.path} 中没有找到记录（需要 reasonbyQwen72b_model1/2/3 目录、info_ectra 目录、train.json 或 *.jsonl 清单）",
                code="invalid",
            )
        prompt = _read_prompt(self.prompt_file, self.options.encoding) if self.prompt_file else None
        categories = read_categories(self.root)
        dataset = Dataset.objects.filter(name=self.dataset_name).first()
        known = list(dict.fromkeys([*(dataset.categories.values_list("name", flat=True) if dataset else []),
                                    *(name for name, _ in categories)]))
        classes = self._resolve_classes(known)
        created_now = False
        if dataset is None:
            # Images are stored in the dataset's folder, before the samples: it needs its id first.
            dataset, created_now = Dataset.objects.get_or_create(name=self.dataset_name)
        if not self.staging.get("ordered"):
            db.execute("BEGIN")
            db.execute("DELETE FROM samples")
            db.execute("CREATE INDEX IF NOT EXISTS records_by_id ON records (external_id, seq)")
            # Samples in the order their first record was read; those only train.json names last.
            db.execute("INSERT INTO samples (external_id) SELECT external_id FROM records WHERE kind != ? "
                       "GROUP BY external_id ORDER BY MIN(seq)", (TRAIN,))
            db.execute("INSERT OR IGNORE INTO samples (external_id) SELECT external_id FROM records WHERE kind = ? "
                       "ORDER BY seq", (TRAIN,))
            db.execute("COMMIT")
            self.staging.put("ordered", True)
        samples = db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
        self.staging.put("plan", {
            "dataset_id": dataset.pk, "created_now": created_now or bool((self.staging.get("plan") or {}).get("created_now")),
            "by_label": classes.by_label, "new": classes.new, "names": classes.names,
            "definitions": [*categories, *((name, "") for name in classes.new)],
            "prompt": prompt, "records_read": records_read, "samples": samples,
            "has_train": any(f.kind == TRAIN for f in self.files),
        })
        return self.batches()

    def batches(self) -> int:
        plan = self.staging.get("plan") or {}
        return -(-plan.get("samples", 0) // self.batch_size)

    def _resolve_classes(self, known: list[str]) -> _Classes:
        """Map every class name of the import to a class; refuse (nothing written) when that would
        create classes without `create_classes`, listing them with the closest known names."""
        db = self.staging.db
        hard_kinds = (MODE, MANIFEST)

        def names_of(*kinds: str) -> list[str]:
            marks = ",".join("?" * len(kinds))
            return [name for (name,) in db.execute(
                f"SELECT name FROM labels WHERE kind IN ({marks}) GROUP BY name ORDER BY MIN(seq)", kinds)]

        def origins(name: str) -> list[str]:
            distinct = [o for (o,) in db.execute(
                "SELECT origin FROM labels WHERE name = ? AND kind IN (?, ?) GROUP BY origin ORDER BY MIN(seq) LIMIT 3",
                (name, *hard_kinds))]
            count = db.execute("SELECT COUNT(DISTINCT origin) FROM labels WHERE name = ? AND kind IN (?, ?)",
                               (name, *hard_kinds)).fetchone()[0]
            return distinct + ([f"等 {count} 处"] if count > 3 else [])

        train_names = names_of(TRAIN)
        names = list(known)
        by_label: dict[str, str | None] = {}
        new: list[str] = []
        unknown: dict[str, list[str]] = {}
        sources: dict[str, list[str]] = {}
        for name in names_of(*hard_kinds):
            resolved = resolve_class_name(name, names)
            if resolved is None:
                from_train = resolve_class_name(name, train_names)
                resolved = from_train or team_file_class_name(name)
                names.append(resolved)
                new.append(resolved)
                unknown[resolved] = closest_class_names(resolved, known)
                sources[resolved] = [*(["train.json"] if from_train else []), *origins(name)]
            elif resolved in new:
                sources[resolved] += origins(name)
            by_label[name] = resolved
        if new and not self.options.create_classes:
            parts = []
            for name in new:
                near = f"；最接近的已有类别：{'、'.join(unknown[name])}" if unknown[name] else ""
                parts.append(f"“{name}”（{'，'.join(dict.fromkeys(sources[name]))}{near}）")
            head = (f"数据集还没有类别，导入需要新建 {len(new)} 个" if not known
                    else f"{len(new)} 个类别名称对应不到已有类别")
            raise ApplicationError(
                f"{head}，没有导入任何内容：{'；'.join(parts)}。"
                "如果它们就是要新建的类别，请加 --create-classes；如果是已有类别的简写，请在 categories.json 中"
                "给出完整名称（或改正文件夹/文件名）。",
                code="unknown_classes", extra={"unknown": unknown},
            )
        # Soft labels (train.json, the info files) only ever name classes of this import.
        for label in [*train_names, *names_of(INFO)]:
            if label not in by_label:
                by_label[label] = resolve_class_name(label, names)
        return _Classes(names=names, by_label=by_label, new=new)

    # ---- batches
    def prepare_batch(self, k: int, *, pool: ThreadPoolExecutor | None = None) -> BatchOutcome:
        """Assemble batch `k`'s samples from their staged records, choose each one's class and store
        its image (in `pool`'s threads); no database write."""
        plan = self.staging.get("plan")
        stage = f"batch:{k}"
        with self.staging.lock:
            self.staging.clear_stage(stage)
            self.staging.db.execute("DELETE FROM unmapped WHERE batch = ?", (k,))
        findings: list[tuple[int, bool, str, str]] = []
        outcome = BatchOutcome()
        chosen: list[tuple[_Pending, str]] = []
        for item in self._assemble(k, findings):
            label = self._choose_label(item, plan, findings, outcome.others)
            if label is not None:
                chosen.append((item, label))
        folder = f"datasets/{plan['dataset_id']}"
        own_pool = pool is None and any(item.images for item, _ in chosen)
        if own_pool:
            pool = ThreadPoolExecutor(max_workers=settings.IMPORT_IMAGE_WORKERS)
        try:
            images = list((pool.map if pool else map)(lambda pair: self._image_of(pair[0], folder), chosen))
        finally:
            if own_pool:
                pool.shutdown()
        unmapped = []
        for (item, label), (image, error) in zip(chosen, images):
            if isinstance(error, _Unmapped):
                written, _, location, seq = item.images[0]
                unmapped.append((seq, k, written, location))
                continue
            if error is not None:
                findings.append((item.images[0][3], False, item.images[0][2], f"{item.external_id}：{error.message}"))
                continue
            outcome.records.append(ClassificationRecord(
                external_id=item.external_id, label=label, image=image,
                outputs=item.outputs, model_names=item.model_names, image_info=item.image_info,
                description=item.description, provenance=item.provenance or None,
            ))
        with self.staging.lock:
            self.staging.add_findings(stage, findings)
            self.staging.db.executemany("INSERT OR REPLACE INTO unmapped (seq, batch, image, location) VALUES (?, ?, ?, ?)",
                                        unmapped)
        return outcome

    def save_batch(self, k: int, outcome: BatchOutcome) -> BatchOutcome:
        """Write a prepared batch and record its counts. Each `classification_records_save` call is
        its own transaction, sized to last about TRANSACTION_SECONDS: on SQLite a reviewer's save waits
        for the one running (the file has one writer), so it must never run long."""
        plan = self.staging.get("plan")
        records = outcome.records
        if records:
            dataset = Dataset.objects.get(pk=plan["dataset_id"])
            definitions = [tuple(d) for d in plan["definitions"]]
            start = 0
            while start < len(records):
                chunk = records[start:start + self._chunk]
                began = time.monotonic()
                saved = classification_records_save(dataset=dataset, records=chunk, categories=definitions)
                seconds = time.monotonic() - began
                for name, value in asdict(saved).items():
                    setattr(outcome.saved, name, getattr(outcome.saved, name) + value)
                start += len(chunk)
                per_sample = seconds / len(chunk)
                self._chunk = max(MIN_CHUNK, min(self.batch_size, int(TRANSACTION_SECONDS / per_sample)
                                                 if per_sample > 0 else self.batch_size))
        self.record_batch(k, outcome.as_json())
        return outcome

    def record_batch(self, k: int, result: dict) -> None:
        with self.staging.lock:
            self.staging.db.execute("INSERT OR REPLACE INTO batches (k, result) VALUES (?, ?)",
                                    (k, json.dumps(result, ensure_ascii=False)))

    def _assemble(self, k: int, findings: list) -> Iterator[_Pending]:
        """The samples of batch `k`, each from its staged records in reading order (the same checks
        as when the records were read one by one: the same id twice in a mode keeps the first)."""
        first, last = k * self.batch_size + 1, (k + 1) * self.batch_size
        with self.staging.lock:
            rows = self.staging.db.execute(
                "SELECT s.external_id, r.seq, r.file_no, r.kind, r.data FROM samples s "
                "JOIN records r ON r.external_id = s.external_id WHERE s.ordinal BETWEEN ? AND ? "
                "ORDER BY s.ordinal, r.seq", (first, last)).fetchall()
            shapes = dict(self.staging.db.execute("SELECT no, shape FROM files"))
        item: _Pending | None = None
        for external_id, seq, file_no, kind, data in rows:
            if item is None or item.external_id != external_id:
                if item is not None:
                    yield item
                item = _Pending(external_id=external_id)
            kept = json.loads(data)
            self._merge(item, kept, seq, self.files[file_no], shapes.get(file_no, ""), findings)
        if item is not None:
            yield item

    def _merge(self, item: _Pending, kept: dict, seq: int, file: SourceFile, shape: str, findings: list) -> None:
        location, who = kept["loc"], f"{item.external_id}："
        base = PurePosixPath(file.rel).parent.as_posix()
        image = (kept["image"], base, location, seq) if kept["image"] else None
        if file.kind == TRAIN:
            if item.train is not None:
                findings.append((seq, False, location, f"{who}在 {item.train.location} 已出现，这一条未使用"))
                return
            item.train = _Label(kept["label"], TRAIN, location, seq)
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
            item.labels.append(_Label(kept["label"], file.kind, location, seq))
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

    @staticmethod
    def _choose_label(item: _Pending, plan: dict, findings: list, others: Counter) -> str | None:
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

    def _image_of(self, item: _Pending, folder: str) -> tuple[str, Exception | None]:
        """The stored image of a sample ("" when it has none) or the error that stopped it."""
        if not item.images:
            return "", None
        if self._by_name is None and self.options.image_root is not None:
            with self.staging.lock:
                if self._by_name is None:
                    self._by_name = _FilesByName(self.options.image_root, self.staging)
        try:
            return _store_first_image(item, root=self.root, options=self.options, folder=folder,
                                      by_name=self._by_name), None
        except (_Unmapped, ApplicationError) as exc:
            return "", exc

    # ---- the end
    def finish(self) -> ImportReport:
        """Record the prompt, remove a dataset this import created but filled with nothing, and
        return the report."""
        report = self.report()
        plan = self.staging.get("plan") or {}
        if report.samples_imported:
            prompt = plan.get("prompt")
            if prompt is not None:
                with transaction.atomic():
                    dataset = Dataset.objects.select_for_update().get(pk=plan["dataset_id"])
                    if dataset.mode3_prompt != prompt:
                        dataset.mode3_prompt = prompt
                        dataset.save(update_fields=["mode3_prompt"])
                        report.prompt_recorded = True
        elif plan.get("created_now"):
            Dataset.objects.filter(pk=plan["dataset_id"], samples__isnull=True).delete()  # leave no empty dataset
        return report

    def report(self) -> ImportReport:
        db = self.staging.db
        plan = self.staging.get("plan") or {}
        report = ImportReport(records_read=plan.get("records_read", 0))
        others: Counter = Counter()
        for (result,) in db.execute("SELECT result FROM batches ORDER BY k"):
            result = json.loads(result)
            report.samples_imported += result["samples"]
            for name, value in result["saved"].items():
                setattr(report.saved, name, getattr(report.saved, name) + value)
            others.update(result.get("others") or {})
        if others:
            shown = "、".join(f"{name} {n} 条" for name, n in others.most_common(5))
            self.staging.clear_stage("end")
            self.staging.add_findings("end", [(LAST_SEQ, True, TRAIN_FILE if plan.get("has_train") else "info_ectra",
                                               f"{sum(others.values())} 条记录的标签不是本次导入的类别，"
                                               f"未导入（{shown}{' …' if len(others) > 5 else ''}）")])
        report.problems, report.problems_total = self.staging.findings(note=False, limit=MAX_LISTED_FINDINGS)
        report.notes, report.notes_total = self.staging.findings(note=True, limit=MAX_LISTED_FINDINGS)
        unmapped = db.execute("SELECT COUNT(*) FROM unmapped").fetchone()[0]
        if unmapped:
            image, location = db.execute("SELECT image, location FROM unmapped ORDER BY seq LIMIT 1").fetchone()
            report.problems.append(_unmapped_problem(unmapped, image, location))
            report.problems_total += 1
        if report.samples_imported:
            report.classes_created = list(plan.get("new") or [])
        return report


@dataclass
class _Classes:
    """Every label name of the import mapped to the class it will be stored under."""

    names: list[str]  # the classes samples may be filed under: known, then new
    by_label: dict[str, str | None]
    new: list[str]


def staging_file(directory: str | Path | None = None) -> Path:
    """A new private file for an import's staging database (removed by the caller)."""
    folder = Path(directory or settings.IMPORT_STAGING_ROOT)
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="import-", suffix=".sqlite3", dir=folder)
    os.close(handle)
    return Path(name)


def import_classification(
    *,
    path: str | Path,
    dataset_name: str,
    image_root: str | Path | None = None,
    path_prefixes: Sequence[tuple[str, str]] = (),
    encoding: str | None = None,
    create_classes: bool = False,
    prompt_file: str | Path | None = None,
    progress: Callable[[ImportProgress], None] | None = None,
) -> ImportReport:
    """Import a folder in the team's layout (or a JSONL manifest) into the dataset `dataset_name`.

    Re-importing updates samples and reasonings in place; reviews are never touched; a field a
    record lacks keeps what is stored. Nothing is written when a class name would need a new class
    and `create_classes` is False (ApplicationError code "unknown_classes"). `prompt_file` is the
    team's mode-3 prompt, recorded with the dataset as the exported instruction.

    Streamed: records are staged in a scratch file, then samples are written IMPORT_BATCH_SAMPLES at
    a time, each batch in its own short transaction, so reviewers keep saving while it runs and an
    interrupted import is finished by running it again. `progress` is called as reading and saving
    advance.
    """
    staging = staging_file()
    job = None
    try:
        job = ClassificationImport(path=path, dataset_name=dataset_name, staging_path=staging, image_root=image_root,
                                   path_prefixes=path_prefixes, encoding=encoding, create_classes=create_classes,
                                   prompt_file=prompt_file)
        total_bytes = sum(f.size for f in job.files)
        read_bytes = 0
        for index, file in enumerate(job.files):
            job.read_file(index)
            read_bytes += file.size
            if progress is not None:
                progress(ImportProgress("read", read_bytes, total_bytes))
        batches = job.prepare()
        samples = job.staging.get("plan")["samples"]
        done = 0
        with ThreadPoolExecutor(max_workers=settings.IMPORT_IMAGE_WORKERS) as images, \
                ThreadPoolExecutor(max_workers=1) as ahead:
            # The next batch is assembled and its images stored while this one is written.
            upcoming = ahead.submit(job.prepare_batch, 0, pool=images) if batches else None
            for k in range(batches):
                outcome = upcoming.result()
                upcoming = ahead.submit(job.prepare_batch, k + 1, pool=images) if k + 1 < batches else None
                job.save_batch(k, outcome)
                done = min(samples, done + job.batch_size)
                if progress is not None:
                    progress(ImportProgress("save", done, samples))
        return job.finish()
    finally:
        if job is not None:
            job.close()
        staging.unlink(missing_ok=True)


def _check_encoding(encoding: str | None) -> str | None:
    if not encoding or encoding.replace("-", "").lower() in ("utf8", "utf8sig"):
        return None
    import codecs

    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise ApplicationError(f"未知的编码：{encoding}（例如 gbk、gb18030）", code="invalid") from None


def _read_prompt(prompt_file: str | Path, encoding: str | None) -> str:
    path = Path(prompt_file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ApplicationError(f"无法读取提示词文件 {path}：{exc.strerror or exc}", code="invalid") from exc
    for codec in ("utf-8-sig", *([encoding] if encoding else [])):
        try:
            text = data.decode(codec)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ApplicationError(f"提示词文件 {path} 不是 UTF-8；请用 --encoding 指明编码", code="invalid")
    text = text.replace("\x00", "").replace("\r\n", "\n").strip()
    if not text:
        raise ApplicationError(f"提示词文件 {path} 是空的", code="invalid")
    if len(text) > settings.IMPORT_MAX_TEXT_CHARS:
        raise ApplicationError(f"提示词过长（{len(text)} 字符，上限 {settings.IMPORT_MAX_TEXT_CHARS}，"
                               "设置 IMPORT_MAX_TEXT_CHARS）", code="invalid")
    return text


def _store_first_image(item: _Pending, *, root: Path, options: ImportOptions, folder: str,
                       by_name: _FilesByName | None) -> str:
    """Store the first of the sample's image paths that resolves; the first error otherwise."""
    first_error: Exception | None = None
    for written, base in dict.fromkeys((written, base) for written, base, _, _ in item.images):
        try:
            source = locate_image(written, root=root, base=root if base == "." else root / base, options=options,
                                  by_name=by_name)
            return store_image(source, folder=folder, owner=item.external_id)
        except (_Unmapped, ApplicationError) as exc:
            first_error = first_error or exc
    raise first_error


def _unmapped_problem(count: int, image: str, location: str) -> ImportProblem:
    example = image.strip()
    windows = bool(re.match(r"^[A-Za-z]:[\\/]", example)) or example.startswith("\\\\")
    folder = str((PureWindowsPath if windows else PurePosixPath)(example).parent)
    return ImportProblem(
        location,
        f"{count} 条记录的图片是另一台机器上的绝对路径（如 {example}），这些样本没有导入。"
        "请加 --image-root DIR 指向本机存放这些图片的目录（按路径末尾的文件夹和文件名查找），"
        f"或加 --path-prefix '{folder}=本机目录' 替换路径前缀，再导入一次。",
    )
