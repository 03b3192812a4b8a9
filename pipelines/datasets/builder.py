"""The dataset builder: one path from records to training files, shared by every export.

Every export (classification, generation, logs, feedback, DPO) produces *records* — the plain dicts
described in `pipelines/datasets/formats/` (`id`, `source`, `prompt`, `input`, `response`, `system`,
`history`, `images`, `chosen`/`rejected`, `meta`) — and hands them to `build_dataset`:

    from pipelines.datasets.builder import BuildOptions, Source, build_dataset

    result = build_dataset(
        [Source("logs", log_records), Source("feedback", feedback_records, cap=500)],
        BuildOptions(format="alpaca", min_length=100, split_ratio=(0.8, 0.1, 0.1), seed=42),
        output="/exports/logs/alpaca.json",     # None = dry run: counts + preview, nothing written
    )
    result.report   # JSON-ready: counts per step, per source, per split; files; dataset_info
    result.preview  # the first formatted rows (what the browser form shows before writing)

Steps, in this order, each reporting how many records it kept and dropped (`report["steps"]`):

    filter      the caller's predicate (`options.filter(record)` returns None to keep, or a reason)
    dedup       exact duplicates of `dedup_field` (default "prompt": instruction + input; "instruction"
                for the instruction alone); first one wins
    near_dup    optional MinHash/LSH removal (`near_dup_threshold`); clusters reported
    length      response length within [min_length, max_length] (chosen for preference records)
    limit       per-source `cap`, per-source `weight` (mix proportions) and the global `limit`;
                each source keeps its first records in input order
    shuffle     with `seed` (random.Random(seed), so the same seed gives the same files)
    split       by `split_ratio` ("train"/"val"/"test"; 2 ratios = "train"/"test"); near-duplicate
                clusters are assigned as a unit so no near-duplicate pair crosses splits
    validate    each row against FORMATS.md's exact keys and image count == <image> count
    write       the files, the LLaMA-Factory dataset_info.json entries, `<stem>_report.json` and
                `<stem>_sources.jsonl` (split, row, record id and source of every written row)

Memory model (a 1 GB log folder in constant memory, apart from per-record hashes):
records are streamed from the sources one at a time; those that pass filter/dedup/near-dup/length
are appended (pickled) to a temporary *spool file*. In memory the builder keeps only a
16-byte digest per distinct dedup value, the spool offset, length and source index per spooled
record (~20 bytes), and — only with near-dup removal or split grouping — one 128×4-byte MinHash signature
per record. Limit, shuffle and split work on the offsets; validate and write read the records back
from the spool one by one in the final order. Nothing holds the records themselves.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import random
import tempfile
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core import files

from . import formats
from core.files import atomic_write_text
from .neardup import DEFAULT_THRESHOLD, NearDupRemover, near_duplicate_clusters

PREVIEW_ROWS = 5
NEAR_DUP_BATCH = 256
EXAMPLES_PER_REASON = 5


@dataclass
class Source:
    """One input of a build: a name (kept on every record as `source`) and its records.

    `records` is an iterable or a zero-argument callable returning one (so it can be re-read).
    `cap`: at most this many records from this source. `weight`: relative share of the result
    (weights of 3 and 1 give a 3:1 mix, as large as the sources and `limit` allow).
    If the iterable has a `report` attribute (dict) after iteration — e.g. the log reader's drop
    reasons — it is included in the build report under `sources[name]["reader"]`.
    """

    name: str
    records: Iterable[dict] | Callable[[], Iterable[dict]]
    cap: int | None = None
    weight: float | None = None

    def iter_records(self) -> Iterable[dict]:
        return self.records() if callable(self.records) else self.records


@dataclass
class BuildOptions:
    """The builder's options; defaults are the team's extraction script's defaults."""

    format: str = "alpaca"
    container: str | None = None  # "json" or "jsonl"; None = from the output suffix
    filter: Callable[[dict], str | None] | None = None
    dedup: bool = True
    dedup_field: str = "prompt"
    near_dup: bool = False
    near_dup_threshold: float = DEFAULT_THRESHOLD
    min_length: int | None = None
    max_length: int | None = None
    length: Callable[[str], int] = len
    limit: int | None = None
    shuffle: bool = True
    seed: int = 42
    split_ratio: tuple[float, ...] | None = None
    # Keep near-duplicate clusters inside one split (costs a MinHash pass when near_dup is off).
    split_keep_near_dups_together: bool = True
    dataset_name: str | None = None  # dataset_info key; default: the output file's stem
    preview_rows: int = PREVIEW_ROWS

    def describe(self) -> dict:
        """The options as JSON (callables by name), for reports and Export.params."""
        data = asdict(self)
        data["filter"] = getattr(self.filter, "__name__", None) if self.filter else None
        data["length"] = getattr(self.length, "__name__", repr(self.length))
        data["split_ratio"] = list(self.split_ratio) if self.split_ratio else None
        return data


@dataclass
class BuildResult:
    report: dict
    preview: list[dict] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.report["total"]


class BuildError(ValueError):
    """The options or sources cannot make a dataset (bad ratio, unknown format …)."""


# --------------------------------------------------------------------------- option parsing

def parse_split_ratio(text: str | None) -> tuple[float, ...] | None:
    """"0.8,0.1,0.1" -> (0.8, 0.1, 0.1); None/"" -> None. Two or three non-negative parts."""
    if not text:
        return None
    try:
        parts = tuple(float(p) for p in str(text).split(","))
    except ValueError:
        raise BuildError(f"拆分比例格式错误：{text!r}（例：0.8,0.1,0.1）") from None
    if len(parts) not in (2, 3) or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise BuildError(f"拆分比例需要 2 或 3 个非负数：{text!r}")
    return parts


def split_names(ratio: tuple[float, ...] | None) -> tuple[str, ...]:
    if not ratio:
        return ("all",)
    return ("train", "test") if len(ratio) == 2 else ("train", "val", "test")


# --------------------------------------------------------------------------- steps

class _Step:
    def __init__(self, name: str, label: str):
        self.name, self.label = name, label
        self.input = self.kept = 0
        self.reasons: Counter[str] = Counter()
        self.details: dict[str, Any] = {}

    def drop(self, reason: str) -> None:
        self.reasons[reason] += 1

    def as_dict(self) -> dict:
        dropped = self.input - self.kept
        return {"step": self.name, "label": self.label, "in": self.input, "kept": self.kept,
                "dropped": dropped, "reasons": dict(self.reasons), **self.details}


def _dedup_value(record: dict, name: str) -> Any:
    """What exact dedup compares. "prompt" is the whole prompt (instruction + input): records that
    differ only in `input` are distinct examples. "instruction" compares the instruction alone."""
    if name == "prompt":
        return [record.get("prompt") or "", record.get("input") or ""]
    if name == "instruction":
        return record.get("prompt")
    return record.get(name)


def _digest(value: Any) -> bytes:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def _answer(record: dict) -> str:
    value = record.get("response")
    if value is None:
        value = record.get("chosen")
    return value if isinstance(value, str) else ""


def _field_text(record: dict, name: str) -> str:
    if name == "prompt":
        return formats.full_prompt(record)
    value = record.get("prompt" if name == "instruction" else name)
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


class _Spool:
    """Records spooled to a temporary file, addressed by offset.

    pickle (not JSON) because it round-trips records several times faster and keeps any value a
    producer put in `meta` (dates, decimals); the file is private to this build and deleted after. Reads use os.pread (one syscall, no
    seek), so reading in shuffled order costs little more than reading in order.
    """

    def __init__(self):
        self._fh = tempfile.TemporaryFile(mode="w+b")
        self._end = 0
        self.offsets = array("q")
        self.lengths = array("l")
        self.sources = array("H")

    def append(self, record: dict, source_index: int) -> None:
        data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        self.offsets.append(self._end)
        self.lengths.append(len(data))
        self.sources.append(source_index)
        self._fh.write(data)
        self._end += len(data)

    def __len__(self) -> int:
        return len(self.offsets)

    def read(self, index: int) -> dict:
        return pickle.loads(os.pread(self._fh.fileno(), self.lengths[index], self.offsets[index]))

    def read_many(self, indexes: Iterable[int]) -> Iterator[tuple[int, dict]]:
        self._fh.flush()
        fd = self._fh.fileno()
        offsets, lengths = self.offsets, self.lengths
        for index in indexes:
            yield index, pickle.loads(os.pread(fd, lengths[index], offsets[index]))

    def close(self) -> None:
        self._fh.close()


def _quotas(available: list[int], sources: list[Source], limit: int | None) -> list[int]:
    """How many records each source contributes: caps, then weights, then the global limit."""
    caps = [min(n, s.cap) if s.cap is not None else n for n, s in zip(available, sources)]
    weighted = [s.weight for s in sources if s.weight]
    if not weighted:
        if limit is None:
            return caps
        quotas, left = [], limit
        for n in caps:  # the first records in source order, as the team's script's --limit
            quotas.append(min(n, left))
            left -= quotas[-1]
        return quotas
    weights = [s.weight or 0.0 for s in sources]
    total_weight = sum(weights)
    # The largest total whose weighted shares every source can fill.
    feasible = min(caps[i] * total_weight / w for i, w in enumerate(weights) if w > 0)
    total = int(min(feasible, limit) if limit is not None else feasible)
    exact = [total * w / total_weight for w in weights]
    quotas = [min(int(x), c) for x, c in zip(exact, caps)]
    # Hand out what rounding left over, largest remainder first (ties: source order).
    order = sorted(range(len(sources)), key=lambda i: (-(exact[i] - int(exact[i])), i))
    short = total - sum(quotas)
    for i in order:
        if short <= 0:
            break
        if weights[i] > 0 and quotas[i] < caps[i]:
            quotas[i] += 1
            short -= 1
    return quotas


def _assign_splits(units: list[list[int]], ratio: tuple[float, ...]) -> list[list[int]]:
    """Assign units (lists of spool indexes; a near-dup cluster is one unit) to splits.

    Units come in shuffled order; each goes to the first split that still has room for it, or —
    when none has — to the split furthest below its target. Deterministic for a given order.
    """
    total = sum(len(u) for u in units)
    weight = sum(ratio)
    exact = [total * r / weight for r in ratio]
    targets = [int(x) for x in exact]
    # Largest remainder, so 8 records at 0.8/0.1/0.1 give 6/1/1 rather than 8/0/0.
    for k in sorted(range(len(ratio)), key=lambda i: (-(exact[i] - targets[i]), i))[:total - sum(targets)]:
        targets[k] += 1
    splits: list[list[int]] = [[] for _ in ratio]
    for unit in units:
        for k, target in enumerate(targets):
            if len(splits[k]) + len(unit) <= target:
                splits[k].extend(unit)
                break
        else:
            k = max(range(len(ratio)), key=lambda i: (targets[i] - len(splits[i]), -i))
            splits[k].extend(unit)
    return splits


# --------------------------------------------------------------------------- the builder

def output_paths(output: str | Path, names: tuple[str, ...]) -> dict[str, Path]:
    """File per split: `out.json` unsplit, else `out_train.json`, `out_val.json`, `out_test.json`."""
    output = Path(output)
    if names == ("all",):
        return {"all": output}
    return {name: output.with_name(f"{output.stem}_{name}{output.suffix}") for name in names}


def build_dataset(sources: Iterable[Source], options: BuildOptions | None = None, *,
                  output: str | Path | None = None,
                  progress: Callable[[str, int], None] | None = None) -> BuildResult:
    """Run every step over `sources` and (with `output`) write the dataset.

    Without `output` it is a dry run: the same counts, validation and preview, no files. With it,
    writes one file per split, merges entries into `dataset_info.json` beside them and writes
    `<stem>_report.json`. `progress(step, n)` is called every 10,000 records read.
    Raises BuildError for unusable options.
    """
    options = options or BuildOptions()
    sources = list(sources)
    if not sources:
        raise BuildError("没有数据源")
    if len({s.name for s in sources}) != len(sources):
        raise BuildError("数据源名称重复")
    try:
        spec = formats.get_format(options.format)
    except formats.FormatError as exc:
        raise BuildError(str(exc)) from None
    if options.min_length is not None and options.max_length is not None and options.min_length > options.max_length:
        raise BuildError("最小长度大于最大长度")
    if options.limit is not None and options.limit < 0:
        raise BuildError("limit 不能为负")

    steps = {name: _Step(name, label) for name, label in (
        ("filter", "过滤"), ("dedup", "精确去重"), ("near_dup", "近似去重"), ("length", "长度"),
        ("limit", "数量限制"), ("shuffle", "打乱"), ("split", "拆分"), ("validate", "校验"), ("write", "写入"),
    )}
    per_source = {s.name: Counter() for s in sources}
    seen: set[bytes] = set()
    remover = NearDupRemover(threshold=options.near_dup_threshold) if options.near_dup else None
    columns: set[str] = set()
    spool = _Spool()
    try:
        # Streaming part: filter -> dedup -> near_dup -> length, survivors spooled. Records wait in
        # small batches between dedup and near_dup so their signatures are computed together.
        read = 0
        pending: list[tuple[dict, int]] = []
        for source_index, source in enumerate(sources):
            iterable = source.iter_records()
            for record in iterable:
                read += 1
                if progress and read % 10_000 == 0:
                    progress("read", read)
                record = dict(record)
                record["source"] = source.name
                record.setdefault("id", f"{source.name}-{per_source[source.name]['read'] + 1}")
                per_source[source.name]["read"] += 1
                if not _keep_exact(record, options, steps, seen):
                    continue
                pending.append((record, source_index))
                if len(pending) >= NEAR_DUP_BATCH:
                    _spool_pending(pending, options, steps, remover, spool, columns, per_source, sources)
            _spool_pending(pending, options, steps, remover, spool, columns, per_source, sources)
            reader_report = getattr(iterable, "report", None)
            if isinstance(reader_report, dict):
                per_source[source.name]["reader"] = reader_report
        if remover is not None:
            steps["near_dup"].details.update(_cluster_report(remover.clusters))

        # limit: caps, weights, global limit — on spool indexes.
        step = steps["limit"]
        step.input = len(spool)
        by_source: list[list[int]] = [[] for _ in sources]
        for index, source_index in enumerate(spool.sources):
            by_source[source_index].append(index)
        quotas = _quotas([len(x) for x in by_source], sources, options.limit)
        selected = [i for indexes, q in zip(by_source, quotas) for i in indexes[:q]]
        step.kept = len(selected)
        for s, indexes, q in zip(sources, by_source, quotas):
            if len(indexes) > q:
                step.reasons[f"{s.name}: 超出配额"] = len(indexes) - q
        step.details["quotas"] = {s.name: q for s, q in zip(sources, quotas)}
        del by_source

        # shuffle
        step = steps["shuffle"]
        step.input = step.kept = len(selected)
        if options.shuffle:
            random.Random(options.seed).shuffle(selected)
        step.details["seed"] = options.seed if options.shuffle else None

        # split
        names = split_names(options.split_ratio)
        step = steps["split"]
        step.input = step.kept = len(selected)
        if options.split_ratio:
            units = _split_units(selected, spool, options, remover is not None, step)
            assigned = _assign_splits(units, options.split_ratio)
        else:
            assigned = [selected]
        split_of = {name: indexes for name, indexes in zip(names, assigned)}

        # validate (+ write)
        paths = output_paths(output, names) if output is not None else {}
        provenance_path = Path(output).with_name(f"{Path(output).stem}_sources.jsonl") if output is not None else None
        entries = _dataset_info_entries(options, spec.name, Path(output), paths, columns) if output is not None else {}
        if output is not None:
            try:  # a clash in an existing dataset_info.json is found before any data is written
                formats.check_dataset_info(Path(output).parent / "dataset_info.json", entries)
            except formats.FormatError as exc:
                raise BuildError(str(exc)) from None
        with contextlib.ExitStack() as pending_files:
            result = _validate_and_write(split_of, spool, options, spec.name, columns, steps, per_source,
                                         sources, paths, provenance_path, pending_files)
            empty = [name for name in names if not result["split_counts"][name]]
            if empty and output is not None:
                # An empty file (or a dataset_info entry for one) makes LLaMA-Factory fail at load time.
                raise BuildError(_empty_message(empty, names, steps))
    finally:
        spool.close()

    report = {
        "format": options.format,
        "options": options.describe(),
        "steps": [steps[name].as_dict() for name in steps],
        "sources": {name: dict(counts) for name, counts in per_source.items()},
        "splits": {name: result["split_counts"][name] for name in names},
        "total": sum(result["split_counts"].values()),
        "columns": sorted(columns),
        "invalid_examples": result["invalid_examples"],
        "empty_splits": [name for name in names if not result["split_counts"][name]],
    }
    written: dict[str, str] = {}
    if output is not None:
        written = {name: str(p) for name, p in paths.items()}
        output = Path(output)
        if entries:  # TRL's conversational formats have no LLaMA-Factory entry
            formats.write_dataset_info(output.parent / "dataset_info.json", entries)
        report["files"] = written
        report["dataset_info"] = entries
        report_path = output.with_name(f"{output.stem}_report.json")
        report["report_file"] = str(report_path)
        report["sources_file"] = str(provenance_path)
        atomic_write_text(report_path, json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    return BuildResult(report=report, preview=result["preview"], files=written)


def _empty_message(empty: list[str], names: tuple[str, ...], steps: dict[str, _Step]) -> str:
    dropped = "，".join(f"{s.label}丢弃 {s.input - s.kept}" for s in steps.values() if s.input - s.kept)
    where = "数据集" if names == ("all",) else f"拆分 {', '.join(empty)}"
    return f"{where}没有任何可写入的行，未写入文件" + (f"（{dropped}）" if dropped else "")


def _keep_exact(record: dict, options: BuildOptions, steps: dict[str, _Step], seen: set[bytes]) -> bool:
    """filter and exact dedup for one record; counts it in each step it reaches."""
    step = steps["filter"]
    step.input += 1
    if options.filter is not None:
        reason = options.filter(record)
        if reason:
            step.drop(str(reason))
            return False
    step.kept += 1

    step = steps["dedup"]
    step.input += 1
    if options.dedup:
        value = _dedup_value(record, options.dedup_field)
        if value is not None:
            digest = _digest(value)
            if digest in seen:
                step.drop(f"重复的 {options.dedup_field}")
                return False
            seen.add(digest)
    step.kept += 1
    return True


def _spool_pending(pending: list[tuple[dict, int]], options: BuildOptions, steps: dict[str, _Step],
                   remover: NearDupRemover | None, spool: _Spool, columns: set[str],
                   per_source: dict[str, Counter], sources: list[Source]) -> None:
    """near_dup and length for a batch of records (in order); survivors go to the spool."""
    if not pending:
        return
    if remover is not None:
        matches = remover.check_many([(r["id"], _field_text(r, options.dedup_field)) for r, _ in pending])
    else:
        matches = [None] * len(pending)
    near, length = steps["near_dup"], steps["length"]
    for (record, source_index), match in zip(pending, matches):
        near.input += 1
        if match is not None:
            near.drop("近似重复")
            continue
        near.kept += 1
        length.input += 1
        n = options.length(_answer(record))
        if options.min_length is not None and n < options.min_length:
            length.drop("回答过短")
            continue
        if options.max_length is not None and n > options.max_length:
            length.drop("回答过长")
            continue
        length.kept += 1
        columns.update(c for c in formats.OPTIONAL_COLUMNS if record.get(c))
        spool.append(record, source_index)
        per_source[sources[source_index].name]["spooled"] += 1
    pending.clear()


def _cluster_report(clusters: dict) -> dict:
    sizes = sorted((1 + len(members) for members in clusters.values()), reverse=True)
    examples = [[kept, *removed[:3]] for kept, removed in list(clusters.items())[:EXAMPLES_PER_REASON]]
    return {"clusters": len(clusters), "largest_clusters": sizes[:5], "cluster_examples": examples}


def _split_units(selected: list[int], spool: _Spool, options: BuildOptions, removed: bool,
                 step: _Step) -> list[list[int]]:
    """Records grouped so near-duplicates stay in one split; units in shuffled order."""
    if removed or not options.split_keep_near_dups_together:
        # After near-dup removal the kept records are pairwise below the threshold.
        return [[i] for i in selected]
    texts = ((i, _field_text(record, options.dedup_field)) for i, record in spool.read_many(selected))
    clusters = near_duplicate_clusters(texts, threshold=options.near_dup_threshold)
    cluster_of = {i: n for n, members in enumerate(clusters) for i in members}
    step.details["near_dup_groups"] = len(clusters)
    units, placed = [], set()
    for i in selected:
        n = cluster_of.get(i)
        if n is None:
            units.append([i])
        elif n not in placed:
            placed.add(n)
            units.append(clusters[n])
    return units


def _validate_and_write(split_of: dict[str, list[int]], spool: _Spool, options: BuildOptions, fmt: str,
                        columns: set[str], steps: dict[str, _Step], per_source: dict[str, Counter],
                        sources: list[Source], paths: dict[str, Path], provenance_path: Path | None,
                        pending_files: contextlib.ExitStack) -> dict:
    """Validate every row and write it. Each file is written under a temporary name and renamed only
    when `pending_files` closes without an exception, so files appear together or not at all."""
    validate, write = steps["validate"], steps["write"]
    # Which source each written row came from: one line per row, in file order.
    provenance = pending_files.enter_context(files.atomic_open(provenance_path)) if provenance_path else None
    spec = formats.get_format(fmt)
    row_columns = columns & set(spec.optional_columns)
    preview: list[dict] = []
    invalid_examples: list[dict] = []
    split_counts: dict[str, int] = {}
    for name, indexes in split_of.items():
        writer = pending_files.enter_context(formats.RowWriter(paths[name], options.container)) if name in paths else None
        kept = 0
        for _, record in spool.read_many(indexes):
            validate.input += 1
            try:
                row = formats.to_row(fmt, record, row_columns)
                errors = formats.validate_row(fmt, row)
            except formats.FormatError as exc:
                errors = [str(exc)]
            if errors:
                validate.drop(errors[0])
                if len(invalid_examples) < 20:
                    invalid_examples.append({"id": record.get("id"), "source": record["source"], "errors": errors})
                continue
            validate.kept += 1
            write.input += 1
            kept += 1
            per_source[record["source"]][f"split:{name}"] += 1
            if len(preview) < options.preview_rows:
                preview.append(row)
            if writer:
                writer.write(row)
                provenance.write(json.dumps({"split": name, "row": kept - 1, "id": record.get("id"),
                                             "source": record["source"]}, ensure_ascii=False) + "\n")
            write.kept += 1
        split_counts[name] = kept
    # A dry run reports what would be written.
    write.details["dry_run"] = not paths
    return {"split_counts": split_counts, "preview": preview, "invalid_examples": invalid_examples}


def _dataset_info_entries(options: BuildOptions, fmt: str, output: Path, paths: dict[str, Path],
                          columns: set[str]) -> dict:
    """One dataset_info entry per written file: `<name>` unsplit, `<name>_train` … when split."""
    base = options.dataset_name or output.stem
    entries = {
        (base if split == "all" else f"{base}_{split}"): formats.dataset_info_entry(fmt, path.name, columns)
        for split, path in paths.items()
    }
    return {name: entry for name, entry in entries.items() if entry is not None}


# --------------------------------------------------------------------------- reports and exports

def report_lines(report: dict) -> list[str]:
    """The report as short human-readable lines (commands print these)."""
    lines = [f"格式 {report['format']}，共 {report['total']} 条"]
    for step in report["steps"]:
        reasons = "，".join(f"{k} {v}" for k, v in step["reasons"].items())
        lines.append(f"  {step['label']:<6} 输入 {step['in']:>8}  保留 {step['kept']:>8}  丢弃 {step['dropped']:>8}"
                     + (f"  ({reasons})" if reasons else ""))
    lines.append("  拆分：" + "，".join(f"{k} {v}" for k, v in report["splits"].items()))
    for name, counts in report["sources"].items():
        reader = counts.get("reader") or {}
        dropped = reader.get("dropped") or {}
        extra = ("；读取时丢弃 " + "，".join(f"{k} {v}" for k, v in dropped.items())) if dropped else ""
        lines.append(f"  来源 {name}：读取 {counts.get('read', 0)}{extra}")
        for problem in (reader.get("problems") or [])[:20]:
            lines.append(f"    {problem['file']}:{problem['line']} {problem['reason']} {problem['detail']}")
    for name, path in (report.get("files") or {}).items():
        lines.append(f"  写入 {name}: {path}")
    return lines


def build_export(sources: Iterable[Source], options: BuildOptions, *, kind: str, file_name: str, user=None,
                 params: dict | None = None, label: str = "", extra_report: Callable[[], dict] | None = None,
                 progress: Callable[[str, int], None] | None = None):
    """Build a dataset into a new export folder (`pipelines.datasets.exports.export_create`) and record it.

    `file_name` is the data file's name in the folder (split files get `_train`, `_val`, `_test`).
    The report's file paths are names inside the folder. `extra_report()` is merged into the report
    after the build (counts a source kept while it was read). Returns (Export, BuildResult).
    """
    from .exports import ExportContent, export_create

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


def product_sources(*, logs: bool = False, logs_job_id: int | None = None, feedback: bool = False,
                    feedback_min_rating: int = 1, feedback_model: str = "", feedback_only_reviewed: bool = False,
                    caps: dict[str, int | None] | None = None,
                    weights: dict[str, float | None] | None = None) -> list[Source]:
    """The sources the product offers the builder form and `build_dataset` command: imported log
    records (one import job or all) and feedback samples (rejected ones never), each with an
    optional cap and weight. Re-readable: each source is a callable."""
    from .feedback import feedback_records
    from .logs import imported_log_records

    caps, weights = caps or {}, weights or {}
    sources = []
    if logs:
        sources.append(Source("logs", lambda: imported_log_records(job_id=logs_job_id),
                              cap=caps.get("logs"), weight=weights.get("logs")))
    if feedback:
        sources.append(Source("feedback", lambda: feedback_records(
            min_rating=feedback_min_rating, model_name=feedback_model, only_reviewed=feedback_only_reviewed),
            cap=caps.get("feedback"), weight=weights.get("feedback")))
    if not sources:
        raise BuildError("请至少选择一个数据源")
    return sources
