"""Reading classification results from disk: a JSONL manifest or the team's mode folders.

Two layouts, both under one import root (see README, section "Reviewing scene classifications"):

1. JSONL manifest — `PATH` is a `.jsonl` file (root = its folder) or a folder holding `*.jsonl`
   files. One record per line:
   `{"id": "…", "image": "images/a.png", "label": "换货", "outputs": {"1": "…", "2": "…", "3": "…"},
     "model": "qwen-vl-72b-instruct", "image_info": {…}}`
   (`mode1`/`mode2`/`mode3` keys are accepted instead of `outputs`).
2. Mode folders — `<root>/reasonbyQwen72b_model{1,2,3}/<class>/*.json` (one record, or a list of
   records, per file) or `<root>/reasonbyQwen72b_model{1,2,3}/<class>.json` (a list of records), each
   record `{"id", "image", "label", "output"}`; the label defaults to the class folder/file name.

An optional `<root>/categories.json` gives definitions: `{"换货": "定义…"}` or
`[{"name": "换货", "definition": "定义…"}]`. Image paths are relative to the root (or to the record's
file) and may not leave the root. Malformed records are reported with file and line (or file and
`#index`) and skipped; everything else is imported.
"""
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ApplicationError
from .images import confine_path, store_image
from .models import Dataset
from .services import ClassificationRecord, RecordsSaveResult, classification_records_save

MODE_FOLDER = re.compile(r"model[_-]?([123])$", re.IGNORECASE)
ID_KEYS = ("id", "sample_id", "external_id")
IMAGE_KEYS = ("image", "image_path", "img", "images")
LABEL_KEYS = ("label", "class", "category")
OUTPUT_KEYS = ("output", "response", "answer")


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
    problems: list[ImportProblem] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        """A human summary, one fact per line, then each problem."""
        s = self.saved
        lines = [
            f"读取记录 {self.records_read} 条，导入样本 {self.samples_imported} 个",
            f"样本：新建 {s.samples_created}，更新 {s.samples_updated}；推理：新建 {s.reasonings_created}，"
            f"更新 {s.reasonings_updated}；新建类别 {s.categories_created}",
            f"问题 {len(self.problems)} 个（已跳过）" if self.problems else "没有问题",
        ]
        lines += [f"  - {p}" for p in self.problems]
        return lines


@dataclass
class _Pending:
    """A sample being assembled from one or more records (one per mode in the folder layout)."""

    external_id: str
    label: str
    location: str
    image: str = ""
    image_base: Path | None = None
    outputs: dict[int, str] = field(default_factory=dict)
    model_names: dict[int, str] = field(default_factory=dict)
    image_info: Any = None


def _first(record: dict, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in record and record[key] not in (None, ""):
            value = record[key]
            if key == "images" and isinstance(value, list):
                return value[0] if value else None
            return value
    return None


def read_categories(root: Path) -> list[tuple[str, str]]:
    """Definitions from `<root>/categories.json`, in file order; [] when the file is absent."""
    path = root / "categories.json"
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


def _jsonl_records(path: Path, rel: str) -> Iterator[tuple[str, Any]]:
    with path.open(encoding="utf-8-sig", errors="strict") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            location = f"{rel}:{number}"
            try:
                yield location, json.loads(line)
            except json.JSONDecodeError as exc:
                yield location, ApplicationError(f"不是有效的 JSON（{exc.msg}，第 {exc.colno} 列）")


def _json_records(path: Path, rel: str) -> Iterator[tuple[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        yield f"{rel}:{getattr(exc, 'lineno', 1)}", ApplicationError(f"不是有效的 JSON：{exc}")
        return
    if isinstance(data, list):
        for index, item in enumerate(data):
            yield f"{rel}#{index}", item
    else:
        yield rel, data


class _Reader:
    def __init__(self, root: Path):
        self.root = root
        self.pending: dict[str, _Pending] = {}
        self.problems: list[ImportProblem] = []
        self.records_read = 0

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def add(self, location: str, record: Any, *, mode: int | None, default_label: str, base: Path) -> None:
        self.records_read += 1
        if isinstance(record, ApplicationError):
            self.problems.append(ImportProblem(location, record.message))
            return
        if not isinstance(record, dict):
            self.problems.append(ImportProblem(location, "记录应为 JSON 对象"))
            return
        external_id = _first(record, ID_KEYS)
        if external_id is None or isinstance(external_id, (dict, list)) or not str(external_id).strip():
            self.problems.append(ImportProblem(location, "缺少 id"))
            return
        external_id = str(external_id).strip()
        label = _first(record, LABEL_KEYS) or default_label
        if not isinstance(label, str) or not label.strip():
            self.problems.append(ImportProblem(location, f"{external_id}：缺少 label"))
            return
        outputs: dict[int, str] = {}
        if mode is not None:
            output = _first(record, OUTPUT_KEYS)
            if output is not None:
                outputs[mode] = output
        else:
            given = record.get("outputs") or {}
            if not isinstance(given, dict):
                self.problems.append(ImportProblem(location, f"{external_id}：outputs 应为 {{\"1\": …, \"2\": …, \"3\": …}}"))
                return
            for key, value in given.items():
                if str(key) not in {"1", "2", "3"}:
                    self.problems.append(ImportProblem(location, f"{external_id}：未知的模式 {key}"))
                    return
                if value is not None:
                    outputs[int(key)] = value
            for m in (1, 2, 3):
                if record.get(f"mode{m}") is not None:
                    outputs[m] = record[f"mode{m}"]
        if any(not isinstance(v, str) for v in outputs.values()):
            self.problems.append(ImportProblem(location, f"{external_id}：输出必须是文本"))
            return
        image = _first(record, IMAGE_KEYS)
        if image is not None and not isinstance(image, str):
            self.problems.append(ImportProblem(location, f"{external_id}：image 应为路径文本"))
            return
        model = record.get("model") or record.get("model_name") or ""
        item = self.pending.get(external_id)
        if item is None:
            item = self.pending[external_id] = _Pending(external_id=external_id, label=label.strip(), location=location)
        elif item.label != label.strip():
            self.problems.append(ImportProblem(
                location, f"{external_id}：标签“{label.strip()}”与 {item.location} 的“{item.label}”不一致，沿用后者"))
        for m, text in outputs.items():
            item.outputs[m] = text
            if isinstance(model, str) and model:
                item.model_names[m] = model
        if image and not item.image:
            item.image, item.image_base = image, base
        if record.get("image_info") is not None:
            item.image_info = record["image_info"]

    def read_jsonl(self, path: Path) -> None:
        for location, record in _jsonl_records(path, self.rel(path)):
            self.add(location, record, mode=None, default_label="", base=path.parent)

    def read_mode_folder(self, folder: Path, mode: int) -> None:
        for entry in sorted(folder.iterdir()):
            if entry.is_dir():
                for path in sorted(entry.rglob("*")):
                    self._read_class_file(path, mode, entry.name)
            else:
                self._read_class_file(entry, mode, entry.stem)

    def _read_class_file(self, path: Path, mode: int, class_name: str) -> None:
        if path.suffix.lower() == ".json":
            records = _json_records(path, self.rel(path))
        elif path.suffix.lower() == ".jsonl":
            records = _jsonl_records(path, self.rel(path))
        else:
            return
        for location, record in records:
            self.add(location, record, mode=mode, default_label=class_name, base=path.parent)


def read_classification(path: str | Path) -> tuple[Path, list[_Pending], list[ImportProblem], int]:
    """Read a manifest or a folder; returns (root, samples to import, problems, records read)."""
    path = Path(path)
    if not path.exists():
        raise ApplicationError(f"路径不存在：{path}", code="invalid")
    root = (path.parent if path.is_file() else path).resolve()
    reader = _Reader(root)
    if path.is_file():
        reader.read_jsonl(path.resolve())
    else:
        for manifest in sorted(root.glob("*.jsonl")):
            reader.read_jsonl(manifest)
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            match = MODE_FOLDER.search(folder.name)
            if match:
                reader.read_mode_folder(folder, int(match.group(1)))
    if reader.records_read == 0 and not reader.problems:
        raise ApplicationError(
            f"{path} 中没有找到记录（需要 *.jsonl 清单或 reasonbyQwen72b_model1/2/3 目录）", code="invalid"
        )
    return root, list(reader.pending.values()), reader.problems, reader.records_read


def _resolve_image(root: Path, item: _Pending) -> Path:
    """The image file of a record, confined to the import root (tried relative to root, then file)."""
    first = confine_path(root, item.image)
    if first.exists() or item.image_base is None or item.image_base == root:
        return first
    relative_base = item.image_base.relative_to(root).as_posix()
    second = confine_path(root, f"{relative_base}/{item.image}")
    return second if second.exists() else first


def import_classification(*, path: str | Path, dataset_name: str) -> ImportReport:
    """Import a manifest or mode-folder tree into the dataset `dataset_name` (created if missing).

    Re-importing updates samples and reasonings in place. Records whose image escapes the root,
    is missing, corrupt, too large or of a disallowed format are reported and skipped.
    """
    root, pending, problems, records_read = read_classification(path)
    categories = read_categories(root)
    dataset, _ = Dataset.objects.get_or_create(name=dataset_name)
    report = ImportReport(records_read=records_read, problems=problems)
    records = []
    for item in pending:
        image = ""
        if item.image:
            try:
                source = _resolve_image(root, item)
                image = store_image(source, folder=f"datasets/{dataset.pk}", stem=item.external_id)
            except ApplicationError as exc:
                report.problems.append(ImportProblem(item.location, f"{item.external_id}：{exc.message}"))
                continue
        records.append(ClassificationRecord(
            external_id=item.external_id, label=item.label, image=image, outputs=item.outputs,
            model_names=item.model_names, image_info=item.image_info,
        ))
    report.saved = classification_records_save(dataset=dataset, records=records, categories=categories)
    report.samples_imported = len(records)
    return report
