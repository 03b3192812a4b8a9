"""Reading classification results from disk into a dataset: the team's folders as their scripts
write them (seed 004), or a JSONL manifest. `import_classification` is the entry point.

What is read under the import root (a folder; a single `.jsonl` file works too):

- `reasonbyQwen72b_model{1,2,3}/` — the model's reasoning per mode: `<class>/*.json` or `<class>.json`,
  each file one record or a list of records (any shape `review.jsonfiles` reads). The class is the
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
- Never collide or erase: stored images are named by id and content (`review.images.store_image`);
  a field a record lacks keeps what is stored; the same id twice in one mode is reported, the first
  kept.
- Bad input loses nothing: each bad record is reported with `file:line` (or `file#index`) and
  skipped, the rest imported; absolute image paths from another machine are mapped with
  `image_root` / `path_prefixes`, and without them reported once, with the fix.
"""
from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from django.conf import settings
from django.db import transaction

from .errors import ApplicationError
from .images import confine_path, store_image
from .jsonfiles import RawRecord, read_record_file
from .models import Dataset, Sample
from .parsing import match_category_name, normalize_name
from .services import ClassificationRecord, RecordsSaveResult, classification_records_save

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
        if self.problems:
            lines.append(f"问题 {len(self.problems)} 个：")
            lines += [f"  - {p}" for p in self.problems]
        if self.notes:
            lines.append(f"说明 {len(self.notes)} 条：")
            lines += [f"  - {n}" for n in self.notes]
        return lines


@dataclass
class _Label:
    name: str
    kind: str
    location: str
    origin: str = ""  # where the name was written: the class folder, or the file


@dataclass
class _Pending:
    """A sample being assembled from the records that name it (one per mode, info, train.json …)."""

    external_id: str
    location: str
    labels: list[_Label] = field(default_factory=list)
    images: list[tuple[str, Path, str]] = field(default_factory=list)  # (as written, base dir, location)
    outputs: dict[int, str] = field(default_factory=dict)
    output_locations: dict[int, str] = field(default_factory=dict)
    model_names: dict[int, str] = field(default_factory=dict)
    image_info: Any = None
    description: str | None = None
    description_location: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)


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
    """The files under a folder by name, built on first use: an image found by its name alone
    when its folders differ from the ones written in the record (only if the name is unique)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._index: dict[str, list[Path]] | None = None

    def find(self, name: str) -> Path | None:
        if self._index is None:
            self._index = {}
            for path in self.folder.rglob("*"):
                if path.is_file():
                    self._index.setdefault(path.name, []).append(path)
        hits = self._index.get(name, [])
        if len(hits) > 1:
            shown = "、".join(h.relative_to(self.folder).as_posix() for h in hits[:3])
            raise ApplicationError(f"--image-root 下有 {len(hits)} 个 {name}（{shown}），无法确定是哪一个", code="image_invalid")
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


def _first(record: dict, keys: tuple[str, ...]) -> tuple[str, Any]:
    for key in keys:
        if key in record and record[key] not in (None, "", []):
            return key, record[key]
    return "", None


class _Reader:
    """Reads every file of an import root into pending samples, problems and notes."""

    def __init__(self, root: Path, options: ImportOptions):
        self.root = root
        self.options = options
        self.pending: dict[str, _Pending] = {}
        self.train: dict[str, tuple[_Label, list[tuple[str, Path, str]]]] = {}
        self.problems: list[ImportProblem] = []
        self.notes: list[ImportProblem] = []
        self.records_read = 0
        self.fallback_files: list[str] = []

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def problem(self, location: str, message: str) -> None:
        self.problems.append(ImportProblem(location, message))

    # ---- files
    def read_file(self, path: Path, *, kind: str, mode: int | None = None, class_name: str = "",
                  origin: str = "") -> None:
        rel = self.rel(path)
        read = read_record_file(path, rel, encoding=self.options.encoding, force_lines=path.suffix.lower() == ".jsonl")
        if read.error:
            self.problem(rel, read.error)
            return
        if read.encoding_used != "utf-8":
            self.fallback_files.append(rel)
        for raw in read.records:
            self.records_read += 1
            for note in raw.notes:
                self.notes.append(ImportProblem(raw.location, note))
            if not raw.ok:
                self.problem(raw.location, raw.error)
                continue
            self.add(raw, kind=kind, mode=mode, class_name=class_name, base=path.parent,
                     file_info={"file": rel, "shape": read.shape}, origin=origin or rel)

    def read_mode_folder(self, folder: Path, mode: int) -> None:
        for entry in sorted(folder.iterdir()):
            if entry.is_dir():
                for path in sorted(p for p in entry.rglob("*") if p.is_file()):
                    if path.suffix.lower() in (".json", ".jsonl"):
                        self.read_file(path, kind=MODE, mode=mode, class_name=team_file_class_name(entry.name),
                                       origin=self.rel(entry) + "/")
            elif entry.suffix.lower() in (".json", ".jsonl"):
                self.read_file(entry, kind=MODE, mode=mode, class_name=team_file_class_name(entry.stem))

    def read_info_folder(self, folder: Path) -> None:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in (".json", ".jsonl")):
            self.read_file(path, kind=INFO)

    # ---- records
    def add(self, raw: RawRecord, *, kind: str, mode: int | None, class_name: str, base: Path,
            file_info: dict[str, str], origin: str) -> None:
        location, record = raw.location, raw.value
        if not isinstance(record, dict):
            self.problem(location, "记录应为 JSON 对象")
            return
        _, external_id = _first(record, ID_KEYS)
        if external_id is None or isinstance(external_id, (dict, list, bool)) or not str(external_id).strip():
            self.problem(location, "缺少 id")
            return
        external_id = str(external_id).strip()
        if len(external_id) > MAX_ID_CHARS:
            self.problem(location, f"id 过长（{len(external_id)} 字符，上限 {MAX_ID_CHARS}）")
            return
        who = f"{external_id}："

        # The label: "output" is the label in train.json and the info files, the reasoning elsewhere.
        label_keys = LABEL_KEYS + (("output",) if kind in (INFO, TRAIN) else ())
        _, label = _first(record, label_keys)
        if label is None:
            label = class_name
        if label is None or (kind == MANIFEST and isinstance(label, str) and not label.strip()):
            self.problem(location, f"{who}缺少 label")
            return
        if not isinstance(label, str):
            self.problem(location, f"{who}标签应为文本")
            return
        label = label.strip()
        if len(label) > MAX_NAME_CHARS:
            self.problem(location, f"{who}标签过长（{len(label)} 字符，上限 {MAX_NAME_CHARS}）")
            return

        outputs, output_key = self._outputs(record, kind=kind, mode=mode, location=location, who=who)
        if outputs is None:
            return
        limit = settings.IMPORT_MAX_TEXT_CHARS
        for m, text in outputs.items():
            if len(text) > limit:
                self.problem(location, f"{who}模式{m}的输出过长（{len(text)} 字符，上限 {limit}，设置 IMPORT_MAX_TEXT_CHARS）")
                return

        image_key, image = _first(record, IMAGE_KEYS)
        if isinstance(image, list):
            if not all(isinstance(i, str) for i in image):
                self.problem(location, f"{who}{image_key} 应为路径或路径列表")
                return
            if len(image) > 1:
                self.notes.append(ImportProblem(location, f"{who}有 {len(image)} 张图片，页面上显示第一张（导出时原样写回）"))
            image = image[0] if image else None
        if image is not None and not isinstance(image, str):
            self.problem(location, f"{who}{image_key} 应为路径或路径列表")
            return
        if image is not None and len(image) > MAX_IMAGE_PATH_CHARS:
            self.problem(location, f"{who}图片路径过长（{len(image)} 字符）")
            return

        description = None
        _, text = _first(record, DESCRIPTION_KEYS)
        if text is not None:
            if not isinstance(text, str):
                self.problem(location, f"{who}picture2text 应为文本")
                return
            if len(text) > limit:
                self.problem(location, f"{who}图片描述过长（{len(text)} 字符，上限 {limit}，设置 IMPORT_MAX_TEXT_CHARS）")
                return
            description = text

        model = record.get("model") or record.get("model_name") or ""
        if not isinstance(model, str) or len(model) > MAX_NAME_CHARS:
            self.problem(location, f"{who}model 应为不超过 {MAX_NAME_CHARS} 字符的文本")
            return

        if kind == TRAIN:
            if external_id in self.train:
                self.problem(location, f"{who}在 {self.train[external_id][0].location} 已出现，这一条未使用")
                return
            images = [(image, base, location)] if image else []
            self.train[external_id] = (_Label(label, TRAIN, location), images)
            return

        item = self.pending.get(external_id)
        # The same id twice for one mode (or one description): keep the first, say where it was.
        for m in outputs:
            if item is not None and m in item.outputs:
                self.problem(location, f"{who}模式{m}已在 {item.output_locations[m]} 出现，这一条未导入")
                return
        if description is not None and item is not None and item.description is not None:
            self.problem(location, f"{who}图片描述已在 {item.description_location} 出现，这一条未导入")
            return
        if item is None:
            item = self.pending[external_id] = _Pending(external_id=external_id, location=location)
        if label:
            # A label written in the record names itself; otherwise the class folder or file does.
            where = location if _first(record, label_keys)[1] is not None else origin
            item.labels.append(_Label(label, kind, location, where))
        for m, text in outputs.items():
            item.outputs[m] = text
            item.output_locations[m] = location
            if model:
                item.model_names[m] = model
        if image:
            item.images.append((image, base, location))
        if record.get("image_info") is not None:
            item.image_info = record["image_info"]
        if description is not None:
            item.description, item.description_location = description, location
        if kind == MODE and output_key:
            as_written = dict(record)
            as_written[output_key] = None  # the output itself lives in the Reasoning row
            item.provenance[f"mode{mode}"] = {
                **file_info, "position": raw.position, "output_key": output_key,
                "record": json.dumps(as_written, ensure_ascii=False),
            }

    def _outputs(self, record: dict, *, kind: str, mode: int | None, location: str, who: str):
        """(mode → output, the key it was under) of a record; (None, "") after reporting a problem."""
        outputs: dict[int, Any] = {}
        key = ""
        if kind == MODE:
            _, output = _first(record, OUTPUT_KEYS)
            if output is not None:
                outputs[mode] = output
            key = next((k for k in OUTPUT_KEYS if k in record), "output")
        elif kind == MANIFEST:
            given = record.get("outputs") or {}
            if not isinstance(given, dict):
                self.problem(location, f"{who}outputs 应为 {{\"1\": …, \"2\": …, \"3\": …}}")
                return None, ""
            for k, value in given.items():
                if str(k) not in {"1", "2", "3"}:
                    self.problem(location, f"{who}未知的模式 {k}")
                    return None, ""
                if value is not None:
                    outputs[int(k)] = value
            for m in (1, 2, 3):
                if record.get(f"mode{m}") is not None:
                    outputs[m] = record[f"mode{m}"]
        if any(not isinstance(v, str) for v in outputs.values()):
            self.problem(location, f"{who}输出必须是文本")
            return None, ""
        return outputs, key


def _read(path: Path, options: ImportOptions) -> tuple[Path, _Reader]:
    """Read a manifest file or a folder; returns the import root and what was read."""
    if not path.exists():
        raise ApplicationError(f"路径不存在：{path}", code="invalid")
    root = (path.parent if path.is_file() else path).resolve()
    reader = _Reader(root, options)
    if path.is_file():
        reader.read_file(path.resolve(), kind=MANIFEST)
        return root, reader
    match = MODE_FOLDER.search(root.name)
    if match:  # the path is one mode folder itself
        reader.read_mode_folder(root, int(match.group(1)))
        return root, reader
    if (root / TRAIN_FILE).is_file():
        reader.read_file(root / TRAIN_FILE, kind=TRAIN)
    for entry in sorted(root.iterdir()):
        if entry.is_file():
            if entry.suffix.lower() == ".jsonl":
                reader.read_file(entry, kind=MANIFEST)
            elif entry.suffix.lower() == ".json" and entry.name not in (TRAIN_FILE, CATEGORIES_FILE):
                reader.notes.append(ImportProblem(entry.name, "未读取：不是 train.json、categories.json 或 *.jsonl 清单"))
            continue
        match = MODE_FOLDER.search(entry.name)
        if match:
            reader.read_mode_folder(entry, int(match.group(1)))
        elif entry.name.lower() in INFO_FOLDERS:
            reader.read_info_folder(entry)
        elif any(p.suffix.lower() in (".json", ".jsonl") for p in entry.rglob("*")):
            reader.notes.append(ImportProblem(
                f"{entry.name}/", "未读取：目录名没有模式编号（应为 reasonbyQwen72b_model1/2/3）也不是 info_ectra"))
    return root, reader


# --------------------------------------------------------------------------- classes
@dataclass
class _Classes:
    """Every label name of the import mapped to the class it will be stored under."""

    names: list[str]  # the classes samples may be filed under: known, then new
    by_label: dict[str, str | None]
    new: list[str]


def _resolve_classes(reader: _Reader, known: list[str], options: ImportOptions) -> _Classes:
    """Map every class name of the import to a class; refuse (nothing written) when that would
    create classes without `create_classes`, listing them with the closest known names."""
    train_names = list(dict.fromkeys(label.name for label, _ in reader.train.values() if label.name))
    hard: dict[str, list[str]] = {}  # name → where it was written
    for item in reader.pending.values():
        for label in item.labels:
            if label.kind in (MODE, MANIFEST):
                hard.setdefault(label.name, []).append(label.origin)
    names = list(known)
    by_label: dict[str, str | None] = {}
    new: list[str] = []
    unknown: dict[str, list[str]] = {}
    sources: dict[str, list[str]] = {}
    for name, locations in hard.items():
        resolved = resolve_class_name(name, names)
        if resolved is None:
            from_train = resolve_class_name(name, train_names)
            resolved = from_train or team_file_class_name(name)
            names.append(resolved)
            new.append(resolved)
            unknown[resolved] = closest_class_names(resolved, known)
            sources[resolved] = [*(["train.json"] if from_train else []), *_folders(locations)]
        else:
            if resolved in new:
                sources[resolved] += _folders(locations)
        by_label[name] = resolved
    if new and not options.create_classes:
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
    for label in [*train_names, *(lab.name for i in reader.pending.values() for lab in i.labels if lab.kind == INFO)]:
        if label not in by_label:
            by_label[label] = resolve_class_name(label, names)
    return _Classes(names=names, by_label=by_label, new=new)


def _folders(origins: list[str]) -> list[str]:
    """Up to three distinct places a name was written, for an error message."""
    distinct = list(dict.fromkeys(origins))
    return distinct[:3] + ([f"等 {len(distinct)} 处"] if len(distinct) > 3 else [])


def _choose_labels(reader: _Reader, classes: _Classes) -> dict[str, str]:
    """The class of every sample to import: train.json's label where it names a class of the
    import, else the class its reasoning was filed under, else the info file's label. Every
    record filed under another class is reported."""
    chosen: dict[str, str] = {}
    by_label = classes.by_label
    others: Counter = Counter()  # records of other tasks: label → count
    for external_id, item in reader.pending.items():
        train = reader.train.get(external_id)
        train_class = by_label.get(train[0].name) if train else None
        hard = [(by_label.get(lab.name), lab) for lab in item.labels if lab.kind in (MODE, MANIFEST)]
        soft = [(by_label.get(lab.name), lab) for lab in item.labels if lab.kind == INFO]
        label = train_class or next((c for c, _ in hard if c), None) or next((c for c, _ in soft if c), None)
        if label is None:  # only an info-file record, of no class of the import: another task
            others[next((lab.name for lab in item.labels), "") or "（无标签）"] += 1
            continue
        chosen[external_id] = label
        for cls, lab in hard:
            if cls and cls != label:
                if train_class:
                    reader.problem(lab.location, f"{external_id}：train.json（{train[0].location}）的标签是“{label}”，"
                                                 f"这条记录却在“{cls}”下；已按 train.json 归入“{label}”")
                else:
                    first = next(lab for c, lab in hard if c == label)
                    reader.problem(lab.location, f"{external_id}：这条记录在“{cls}”下，与 {first.location} 的"
                                                 f"“{label}”不一致；沿用“{label}”")
        for cls, lab in soft:
            if cls != label:
                reader.notes.append(ImportProblem(
                    lab.location, f"{external_id}：信息提取文件的标签“{lab.name}”与样本的类别“{label}”不一致"
                                  f"（以{'train.json' if train_class else '推理结果所在类别'}为准）"))
    # train.json records of the import's classes with no reasoning (e.g. refused by the content
    # filter) are samples too; records of other tasks are counted and left alone.
    for external_id, (label, images) in reader.train.items():
        if external_id in reader.pending:
            continue
        cls = by_label.get(label.name)
        if cls is None:
            others[label.name or "（无标签）"] += 1
            continue
        item = reader.pending[external_id] = _Pending(external_id=external_id, location=label.location)
        item.images.extend(images)
        chosen[external_id] = cls
    if others:
        shown = "、".join(f"{name} {n} 条" for name, n in others.most_common(5))
        reader.notes.append(ImportProblem(TRAIN_FILE if reader.train else "info_ectra",
                                          f"{sum(others.values())} 条记录的标签不是本次导入的类别，"
                                          f"未导入（{shown}{' …' if len(others) > 5 else ''}）"))
    for external_id, item in reader.pending.items():
        train = reader.train.get(external_id)
        if train and external_id in chosen:
            item.images.extend(train[1])
    return chosen


# --------------------------------------------------------------------------- import
def import_classification(
    *,
    path: str | Path,
    dataset_name: str,
    image_root: str | Path | None = None,
    path_prefixes: Sequence[tuple[str, str]] = (),
    encoding: str | None = None,
    create_classes: bool = False,
    prompt_file: str | Path | None = None,
) -> ImportReport:
    """Import a folder in the team's layout (or a JSONL manifest) into the dataset `dataset_name`.

    Re-importing updates samples and reasonings in place; reviews are never touched; a field a
    record lacks keeps what is stored. Nothing is written when a class name would need a new class
    and `create_classes` is False (ApplicationError code "unknown_classes"). `prompt_file` is the
    team's mode-3 prompt, recorded with the dataset as the exported instruction.
    """
    options = ImportOptions(
        image_root=Path(image_root).resolve() if image_root else None,
        path_prefixes=tuple((old, str(Path(new).resolve())) for old, new in path_prefixes),
        encoding=_check_encoding(encoding),
        create_classes=create_classes,
    )
    if options.image_root is not None and not options.image_root.is_dir():
        raise ApplicationError(f"--image-root 不是目录：{image_root}", code="invalid")
    prompt = _read_prompt(prompt_file, options.encoding) if prompt_file else None
    root, reader = _read(Path(path), options)
    if reader.records_read == 0 and not reader.problems:
        raise ApplicationError(
            f"{path} 中没有找到记录（需要 reasonbyQwen72b_model1/2/3 目录、info_ectra 目录、train.json 或 *.jsonl 清单）",
            code="invalid",
        )
    categories = read_categories(root)
    dataset = Dataset.objects.filter(name=dataset_name).first()
    known = list(dict.fromkeys([*(dataset.categories.values_list("name", flat=True) if dataset else []),
                                *(name for name, _ in categories)]))
    classes = _resolve_classes(reader, known, options)
    chosen = _choose_labels(reader, classes)
    for rel in reader.fallback_files:
        reader.notes.append(ImportProblem(rel, f"不是 UTF-8 的行按 {options.encoding} 读取"))

    report = ImportReport(records_read=reader.records_read, problems=reader.problems, notes=reader.notes)
    created_now = False
    if dataset is None and any(reader.pending[i].images for i in chosen):
        # Images are copied outside any transaction (a long copy must not hold the database), into
        # the dataset's folder: the dataset needs its id first.
        dataset, created_now = Dataset.objects.get_or_create(name=dataset_name)
    by_name = _FilesByName(options.image_root) if options.image_root else None
    records, unmapped = [], []
    for external_id, label in chosen.items():
        item = reader.pending[external_id]
        image = ""
        if item.images:
            try:
                image = _store_first_image(item, root=root, options=options, folder=f"datasets/{dataset.pk}",
                                           by_name=by_name)
            except _Unmapped:
                unmapped.append(item)
                continue
            except ApplicationError as exc:
                report.problems.append(ImportProblem(item.images[0][2], f"{external_id}：{exc.message}"))
                continue
        records.append(ClassificationRecord(
            external_id=external_id, label=label, image=image, outputs=item.outputs,
            model_names=item.model_names, image_info=item.image_info, description=item.description,
            provenance=item.provenance or None,
        ))
    if unmapped:
        report.problems.append(_unmapped_problem(unmapped))
    if not records:
        if created_now:
            dataset.delete()  # nothing imported: leave no empty dataset behind
        return report

    definitions = [*categories, *((name, "") for name in classes.new)]
    with transaction.atomic():
        dataset, _ = Dataset.objects.get_or_create(name=dataset_name)
        report.saved = classification_records_save(dataset=dataset, records=records, categories=definitions)
        if prompt is not None and dataset.mode3_prompt != prompt:
            dataset.mode3_prompt = prompt
            dataset.save(update_fields=["mode3_prompt"])
            report.prompt_recorded = True
    report.samples_imported = len(records)
    report.classes_created = list(classes.new)
    return report


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
    for written, base, _ in dict.fromkeys(item.images):
        try:
            source = locate_image(written, root=root, base=base, options=options, by_name=by_name)
            return store_image(source, folder=folder, owner=item.external_id)
        except (_Unmapped, ApplicationError) as exc:
            first_error = first_error or exc
    raise first_error


def _unmapped_problem(items: list[_Pending]) -> ImportProblem:
    example = items[0].images[0][0].strip()
    windows = bool(re.match(r"^[A-Za-z]:[\\/]", example)) or example.startswith("\\\\")
    folder = str((PureWindowsPath if windows else PurePosixPath)(example).parent)
    return ImportProblem(
        items[0].images[0][2],
        f"{len(items)} 条记录的图片是另一台机器上的绝对路径（如 {example}），这些样本没有导入。"
        "请加 --image-root DIR 指向本机存放这些图片的目录（按路径末尾的文件夹和文件名查找），"
        f"或加 --path-prefix '{folder}=本机目录' 替换路径前缀，再导入一次。",
    )
