"""The dataset builder: one path from records to training files, shared by every export.

Every export (classification, generation, logs, feedback, DPO) produces *records* — the plain dicts
described in `pipelines/datasets/formats/` (`id`, `source`, `prompt`, `input`, `response`, `system`,
`history`, `images`, `chosen`/`rejected`, `meta`) — and hands them to `build_dataset`:

    from pipelines.datasets.builder import build_dataset
    from pipelines.datasets.options import BuildOptions, Source

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
    validate    each row against docs/formats.md's exact keys and image count == <image> count

A record's row is made and checked as it is read, before dedup: a record that cannot be written
takes no part in dedup or near-dup (it claims no dedup value and no near-dup index entry, so a valid
record after it is not its duplicate) and is dropped, with its id, by the validate step.
    write       the files, the LLaMA-Factory dataset_info.json entries, `<stem>_report.json` and
                `<stem>_sources.jsonl` (split, row, record id and source of every written row)

Memory model (a 1 GB log folder in constant memory, apart from per-record hashes):
records are streamed from the sources one at a time; those that pass filter/dedup/near-dup/length
are appended to a temporary *spool file*: the record pickled and, when valid, its training row
already converted, validated and encoded (`_SpooledRows`; a log folder's records, which carry no
optional columns, are spooled as the row alone). In memory the builder keeps only a 16-byte digest
per distinct dedup value, the spool offset, lengths and source index per spooled record (~26
bytes), and — only with near-dup removal or split grouping — one 128×4-byte MinHash signature per
record. Limit, shuffle and split work on the offsets; validate and write read the rows (or records)
back from the spool one by one in the final order. Nothing holds the records themselves.

Beside this module: `options` (Source, BuildOptions, BuildResult, BuildError), `spool` (the spool
file), `allocation` (source quotas and split assignment), `neardup` (MinHash/LSH); writing a build
into a recorded export folder is `exports.build_export`.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from core import files
from core.files import atomic_write_text

from . import formats
from .formats import OPTIONAL_COLUMNS
from .formats.plain import plain_row_encoder
from .formats.rowfiles import FLUSH_ROWS, encode_row, escape_lone_surrogates
from .allocation import assign_splits, source_quotas
from .neardup import NearDupRemover, near_duplicate_clusters
from .options import BuildError, BuildOptions, BuildResult, Source, split_names
from .spool import Spool

NEAR_DUP_BATCH = 256
EXAMPLES_PER_REASON = 5


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


def _dedup_digest(record: dict, name: str) -> bytes | None:
    """The digest of what exact dedup compares (None: nothing to compare)."""
    if name == "prompt":
        prompt, extra = record.get("prompt") or "", record.get("input") or ""
        if type(prompt) is str and type(extra) is str:  # _digest's, without building the list
            return _prompt_digest(prompt, extra)
    value = _dedup_value(record, name)
    return None if value is None else _digest(value)


def _digest(value: Any) -> bytes:
    if isinstance(value, str):
        text = value
    elif type(value) is list and len(value) == 2 and type(value[0]) is str and type(value[1]) is str:
        return _prompt_digest(value[0], value[1])
    else:
        # Hashed apart from text, so the string "5" is no duplicate of the number 5 (which the
        # validate step drops from a text field: a valid record must not be lost to it).
        return _text_digest(_json_text(value), b"json")
    return _text_digest(text)


def _prompt_digest(prompt: str, extra: str) -> bytes:
    """The "prompt" dedup value [prompt, input] hashed: length-prefixed, unambiguous, and ~30x
    cheaper than json.dumps, which was a tenth of an extraction's time. Most records have no input:
    their prompt is hashed alone, in a domain of its own, without a copy of it."""
    if not extra:
        return _text_digest(prompt, b"prompt")
    return _text_digest(f"{len(prompt)}:{prompt}\x00{extra}")


def _text_digest(text: str, person: bytes = b"") -> bytes:
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate: hashed as it is, so dedup still tells records apart; the validate step
        # reports the record, since no UTF-8 file can hold it.
        data = text.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16, person=person).digest()


def _json_text(value: Any) -> str:
    """A value that is not text as deterministic text: its JSON, dates in ISO form, other objects
    by str(); keys that cannot be sorted (1 and "b") in their own order."""
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=_json_default)
    except TypeError:
        pass
    try:
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError, RecursionError):  # e.g. a value that contains itself
        return repr(value)


def _json_default(value: Any) -> Any:
    isoformat = getattr(value, "isoformat", None)  # date, datetime, time
    return isoformat() if callable(isoformat) else str(value)


def _answer(record: dict) -> str:
    value = record.get("response")
    if value is None:
        value = record.get("chosen")
    return value if isinstance(value, str) else ""


def _field_text(record: dict, name: str) -> str:
    if name == "prompt":
        text = formats.full_prompt(record)
        return text if isinstance(text, str) else _json_text(text)
    value = record.get("prompt" if name == "instruction" else name)
    if value is None:
        return ""
    return value if isinstance(value, str) else _json_text(value)


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
    rows = _SpooledRows(spec, sources, options)
    spool = Spool()
    try:
        # Streaming part: filter -> dedup -> near_dup -> length, survivors spooled. Records wait in
        # small batches between dedup and near_dup so their signatures are computed together.
        read = 0
        pending: list[_Pending] = []
        filter_step, dedup_step = steps["filter"], steps["dedup"]
        for source_index, source in enumerate(sources):
            iterable = source.iter_records()
            name, counts = source.name, per_source[source.name]
            for record in iterable:
                read += 1
                if progress and read % 10_000 == 0:
                    progress("read", read)
                record = dict(record)
                record["source"] = name
                if "id" not in record:
                    record["id"] = f"{name}-{counts['read'] + 1}"
                counts["read"] += 1
                if options.filter is not None and not _passes_filter(record, options, filter_step):
                    continue
                # The row is made before dedup: a record that cannot be written claims no dedup key
                # (nor a near-dup index entry), so it cannot make a valid record after it a duplicate.
                own = [c for c in OPTIONAL_COLUMNS if record.get(c)] if any(map(record.get, OPTIONAL_COLUMNS)) else ()
                row = rows.prepare(record, source_index, own)
                if options.dedup and row is not None and not _first_of_its_kind(record, options, dedup_step, seen):
                    continue
                pending.append((record, source_index, own, row))
                if len(pending) >= NEAR_DUP_BATCH:
                    _spool_pending(pending, options, steps, remover, spool, columns, rows, per_source, sources)
            _spool_pending(pending, options, steps, remover, spool, columns, rows, per_source, sources)
            reader_report = getattr(iterable, "report", None)
            if isinstance(reader_report, dict):
                per_source[source.name]["reader"] = reader_report
        _count_exact(read, filter_step, dedup_step)
        if remover is not None:
            steps["near_dup"].details.update(_cluster_report(remover.clusters))

        # limit: caps, weights, global limit — on spool indexes.
        step = steps["limit"]
        step.input = len(spool)
        by_source: list[list[int]] = [[] for _ in sources]
        for index, source_index in enumerate(spool.sources):
            by_source[source_index].append(index)
        quotas = source_quotas([len(x) for x in by_source], sources, options.limit)
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
            assigned = assign_splits(units, options.split_ratio)
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
            result = _validate_and_write(split_of, spool, options, spec.name, columns, rows, steps, per_source,
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
    report = _printable(report)  # stored in the database, written to a file and shown: UTF-8 only
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


def _printable(value):
    """`value` (the report's dicts, lists and strings) with lone surrogates spelled visibly."""
    if isinstance(value, str):
        return escape_lone_surrogates(value)
    if isinstance(value, dict):
        return {_printable(key): _printable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_printable(item) for item in value]
    return value


def _empty_message(empty: list[str], names: tuple[str, ...], steps: dict[str, _Step]) -> str:
    dropped = "，".join(f"{s.label}丢弃 {s.input - s.kept}" for s in steps.values() if s.input - s.kept)
    where = "数据集" if names == ("all",) else f"拆分 {', '.join(empty)}"
    return f"{where}没有任何可写入的行，未写入文件" + (f"（{dropped}）" if dropped else "")


def _passes_filter(record: dict, options: BuildOptions, filter_step: _Step) -> bool:
    """The caller's filter for one record; counts what it drops (`_count_exact` the rest)."""
    reason = options.filter(record)
    if reason:
        filter_step.drop(str(reason))
        return False
    return True


def _first_of_its_kind(record: dict, options: BuildOptions, dedup_step: _Step, seen: set[bytes]) -> bool:
    """Exact dedup for one record that can be written: whether it is the first with its dedup value."""
    digest = _dedup_digest(record, options.dedup_field)
    if digest is not None:
        if digest in seen:
            dedup_step.drop(f"重复的 {options.dedup_field}")
            return False
        seen.add(digest)
    return True


def _count_exact(read: int, filter_step: _Step, dedup_step: _Step) -> None:
    """The filter and dedup counts once every record was read: each drop counted one reason."""
    filter_step.input = read
    filter_step.kept = read - sum(filter_step.reasons.values())
    dedup_step.input = filter_step.kept
    dedup_step.kept = dedup_step.input - sum(dedup_step.reasons.values())


def _spool_pending(pending: list[_Pending], options: BuildOptions, steps: dict[str, _Step],
                   remover: NearDupRemover | None, spool: Spool, columns: set[str], rows: _SpooledRows,
                   per_source: dict[str, Counter], sources: list[Source]) -> None:
    """near_dup and length for a batch of records (in order); survivors go to the spool. A record
    that cannot be written is neither checked nor indexed for near-duplicates (the validate step
    drops and reports it)."""
    if not pending:
        return
    if remover is not None:
        found = iter(remover.check_many([(r["id"], _field_text(r, options.dedup_field))
                                         for r, _, _, row in pending if row is not None]))
        matches = [None if row is None else next(found) for _, _, _, row in pending]
    else:
        matches = [None] * len(pending)
    near, length = steps["near_dup"], steps["length"]
    measure, min_length, max_length = options.length, options.min_length, options.max_length
    # Counted per batch, not per record: the loop below runs once per record.
    near_kept, spooled = 0, [0] * len(sources)
    survivors = []
    for item, match in zip(pending, matches):
        if match is not None:
            near.drop("近似重复")
            continue
        near_kept += 1
        n = measure(_answer(item[0]))
        if min_length is not None and n < min_length:
            length.drop("回答过短")
            continue
        if max_length is not None and n > max_length:
            length.drop("回答过长")
            continue
        survivors.append(item)
        spooled[item[1]] += 1
    rows.append_many(spool, survivors, columns)
    near.input += len(pending)
    near.kept += near_kept
    length.input += near_kept
    length.kept += sum(spooled)
    for source, n in zip(sources, spooled):
        if n:
            per_source[source.name]["spooled"] += n
    pending.clear()


class _SpooledRows:
    """Rows converted, validated and encoded once, at spool time, and spooled beside their record,
    so the write step copies bytes instead of unpickling and converting each record again.

    A row depends on the optional columns of the whole file, known only when every record is
    spooled; a spooled row is made with the columns seen so far and used only if they are the final
    ones (`valid_from`: the columns last grew when that many records were spooled). Every other
    record — spooled before the columns grew, invalid, or unusual in any way — is converted from
    the record at write time, exactly as without this.

    When the columns are known in advance (every source declares records without optional columns,
    no filter that could add one, no near-duplicate grouping reading the records back), a valid
    row is spooled without its record: the pickling is saved too, and the preview is read back
    from the row's JSON.
    """

    def __init__(self, spec: formats.Format, sources: list[Source], options: BuildOptions):
        self.fmt = spec.name
        self.plain_row = plain_row_encoder(spec.name)  # most records' rows, without building them
        self.carried = frozenset(spec.optional_columns)
        self.columns: frozenset[str] = frozenset()
        self.valid_from = 0
        self.seen = 0
        self.source_names = [s.name for s in sources]
        groups = bool(options.split_ratio) and options.split_keep_near_dups_together and not options.near_dup
        self.keep_records = (options.filter is not None or groups
                             or not all(s.declares_no_optional_columns() for s in sources))

    def prepare(self, record: dict, source_index: int, own: list[str] | tuple[()]) -> bytes | None:
        """Before dedup: whether `record` (whose own optional columns are `own`) can be written — its
        row made with the columns it would be spooled with, validated and encoded. None when it
        cannot; else its spooled bytes, or b"" when the write step is left to make its row.

        Only a record found unwritable is kept out of dedup and near-dup. Columns only grow and a
        row with more columns is checked no less strictly, so such a record is dropped by the
        validate step whatever columns the file ends with."""
        row_columns = self.columns.union(self.carried.intersection(own)) if own else self.columns
        text = None if row_columns else self.plain_row(record)
        if text is None:
            try:
                row = formats.to_row(self.fmt, record, row_columns)
                if formats.validate_row(self.fmt, row):
                    return None
                text = encode_row(row)
            except (formats.FormatError, UnicodeEncodeError):  # reported by the validate step
                return None
            except Exception:  # noqa: BLE001 - raised (or not, if never written) at write time, as before
                return b""
        try:
            # A source changed by the caller's filter is left to the write step, which reports it as it is.
            if record.get("source") is not self.source_names[source_index]:
                return _utf8_checked(text)
            id_text = encode_row(record.get("id"))
        except Exception:  # noqa: BLE001 - an id that is not JSON: the write step's to handle
            return _utf8_checked(text)
        try:  # row and id encoded in one go: this runs once per record
            return f"{text}\n{id_text}".encode("utf-8")
        except UnicodeEncodeError as exc:  # the row is reported by the validate step, an id left to the write step
            return None if exc.start < len(text) else b""

    def append_many(self, spool: Spool, batch: list[_Pending], columns: set[str]) -> None:
        """Spool each record of `batch` (in order) with its row (`row JSON + "\\n" + id JSON`, UTF-8)
        when the row is valid, adding its optional columns to `columns`; the row `prepare` made is
        used when the columns have not grown since."""
        # `prepare` ran for the whole batch before any of it is spooled, with the columns as they are now.
        made_with = self.columns
        keep_records, carried, append = self.keep_records, self.carried, spool.append
        for record, source_index, own, row in batch:
            if own:
                columns.update(own)
                if len(columns) != self.seen:  # columns only grow
                    if not keep_records:
                        raise BuildError(f"数据源 {self.source_names[source_index]} 声明记录没有 system/history/images，"
                                         f"但记录 {record.get('id')} 含有 {', '.join(sorted(columns))}")
                    self.seen = len(columns)
                    row_columns = carried.intersection(columns)
                    if row_columns != self.columns:
                        self.columns, self.valid_from = row_columns, len(spool)
            if not row:
                row = b""
            elif (made_with is not self.columns or own) and made_with.union(carried.intersection(own)) != self.columns:
                row = self._remade(record)
            append(record if keep_records or not row else None, source_index, row)

    def _remade(self, record: dict) -> bytes:
        """`record`'s spooled bytes made again with the columns as they are now, as `prepare` does."""
        try:
            row = formats.to_row(self.fmt, record, self.columns)
            text = encode_row(row)
            if not formats.validate_row(self.fmt, row):
                return f"{text}\n{encode_row(record.get('id'))}".encode("utf-8")
        except Exception:  # noqa: BLE001 - raised (or not, if never written) at write time, as before
            pass
        return b""


def _utf8_checked(text: str) -> bytes | None:
    """b"" (a row left to the write step) if UTF-8 can hold `text`, else None (it cannot be written)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return b""


# A record waiting for near-dup and length: (record, source index, its own optional columns,
# `_SpooledRows.prepare`'s bytes or None).
_Pending = tuple[dict, int, "list[str] | tuple[()]", "bytes | None"]


def _cluster_report(clusters: dict) -> dict:
    sizes = sorted((1 + len(members) for members in clusters.values()), reverse=True)
    examples = [[kept, *removed[:3]] for kept, removed in list(clusters.items())[:EXAMPLES_PER_REASON]]
    return {"clusters": len(clusters), "largest_clusters": sizes[:5], "cluster_examples": examples}


def _split_units(selected: list[int], spool: Spool, options: BuildOptions, removed: bool,
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


def _provenance_line(split_json: str, row: int, id_json: str, source_json: str) -> str:
    """A `_sources.jsonl` line: the bytes json.dumps({"split", "row", "id", "source"}) writes, from
    pre-encoded parts."""
    return f'{{"split": {split_json}, "row": {row}, "id": {id_json}, "source": {source_json}}}\n'


def _name_json(value: Any) -> str:
    """An id's or a source name's JSON for `_sources.jsonl`, lone surrogates as their escapes."""
    return escape_lone_surrogates(encode_row(value))


def _validate_and_write(split_of: dict[str, list[int]], spool: Spool, options: BuildOptions, fmt: str,
                        columns: set[str], rows: _SpooledRows, steps: dict[str, _Step],
                        per_source: dict[str, Counter], sources: list[Source], paths: dict[str, Path],
                        provenance_path: Path | None, pending_files: contextlib.ExitStack) -> dict:
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
    provenance_lines: list[str] = []
    source_json = [_name_json(s.name) for s in sources]
    source_counts = [per_source[s.name] for s in sources]
    extra_lengths, source_of, read_extra = spool.extra_lengths, spool.sources, spool.extra_reader()
    valid_from = rows.valid_from
    for name, indexes in split_of.items():
        writer = pending_files.enter_context(formats.RowWriter(paths[name], options.container)) if name in paths else None
        kept = 0
        split_json = encode_row(name)
        split_key = f"split:{name}"
        # Rows made at spool time (valid, written): counted per source, added to the steps after the split.
        ready = [0] * len(sources)
        for index in indexes:
            if extra_lengths[index] and index >= valid_from:  # the row made at spool time holds
                kept += 1
                source_index = source_of[index]
                ready[source_index] += 1
                if writer or len(preview) < options.preview_rows:
                    row_json, _, id_json = read_extra(index).partition(b"\n")
                    if len(preview) < options.preview_rows:  # the preview needs the row itself
                        preview.append(formats.to_row(fmt, spool.read(index), row_columns) if rows.keep_records
                                       else json.loads(row_json))
                    if writer:
                        writer.write_encoded(row_json)
                        provenance_lines.append(_provenance_line(split_json, kept - 1, id_json.decode("utf-8"),
                                                                 source_json[source_index]))
                        if len(provenance_lines) >= FLUSH_ROWS:
                            provenance.write("".join(provenance_lines))
                            provenance_lines.clear()
                continue
            validate.input += 1
            record = spool.read(index)
            try:
                row = formats.to_row(fmt, record, row_columns)
                errors = formats.validate_row(fmt, row)
                # Encoded here, not by the writer: text UTF-8 cannot hold is reported, in a dry run too.
                encoded = None if errors else formats.encoded_row(row)
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
            per_source[record["source"]][split_key] += 1
            if len(preview) < options.preview_rows:
                preview.append(row)
            if writer:
                writer.write_encoded(encoded)
                provenance_lines.append(_provenance_line(split_json, kept - 1, _name_json(record.get("id")),
                                                         _name_json(record["source"])))
                if len(provenance_lines) >= FLUSH_ROWS:
                    provenance.write("".join(provenance_lines))
                    provenance_lines.clear()
            write.kept += 1
        done = sum(ready)
        validate.input += done
        validate.kept += done
        write.input += done
        write.kept += done
        for counts, n in zip(source_counts, ready):
            if n:
                counts[split_key] += n
        split_counts[name] = kept
    if provenance_lines:
        provenance.write("".join(provenance_lines))
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


# --------------------------------------------------------------------------- reports

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
