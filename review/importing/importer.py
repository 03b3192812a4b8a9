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
   file of its own (IMPORT_STAGING_ROOT), with its problems and label names (`read_records`; from
   PROCESS_READING_FROM_BYTES of files, run by IMPORT_PROCESSES processes, a few files ahead);
2. the class names are resolved from the staged names — refusing before anything is written — and
   the samples ordered as their first record was read;
3. IMPORT_BATCH_SAMPLES samples at a time are assembled from their staged records and their images
   checked and stored — the next BATCHES_AHEAD batches while this one is written; from
   PROCESS_BATCHES_FROM samples by IMPORT_PROCESSES processes on other cores (`assemble_and_store`),
   else here, the images by IMPORT_IMAGE_WORKERS threads — and written through
   `review.services.classification_records_save` in transactions of about TRANSACTION_SECONDS each.
   Writing is idempotent by (dataset, id): an interrupted import keeps what it committed and
   finishes when run again.
"""
from __future__ import annotations

import contextlib
import json
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import transaction

from core.bulk import analyze_tables
from core.errors import ApplicationError
from core.images import image_store_processes
from core.jsonfiles import iter_record_file
from core.processes import may_start_processes, worker_processes
from core.sqlite3 import let_waiting_writers_first
from review.models import Dataset, LabelSuspicion, Reasoning, Sample
from review.services import classification_records_save

from .assembly import Pending, assemble_and_store, assemble_rows, batch_rows, record_of
from .classes import resolve_classes
from .images import FilesByName, KnownFolders, Unmapped, store_first_image, unmapped_problem
from .planning import (
    MANIFEST,
    MISSING,
    MODE,
    TRAIN,
    TRAIN_FILE,
    ImportOptions,
    SourceFile,
    plan_files,
    read_categories,
)
from .records import Rejected, check_record
from .report import BatchOutcome, ImportProgress, ImportReport
from .staging import FILE_SEQ, LAST_SEQ, Staging, file_seq, staging_file

# One encoder for every staged record (json.dumps with options builds a new one per call).
_encode_staged = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
MAX_LISTED_FINDINGS = 1000  # problems (and notes) listed one by one in a report; all are counted
TRANSACTION_SECONDS = 0.2  # how long one write transaction of an import should last …
MIN_CHUNK = 20  # … unless that is fewer samples than this
PROCESS_BATCHES_FROM = 2000  # samples from which an import's batches are assembled (images stored) in processes
ANALYZE_FROM = 1000  # samples an import writes before it refreshes the tables' statistics (then at each doubling)
PROCESS_CHUNK = 64  # samples handed to a process at a time
BATCHES_AHEAD = 2  # batches prepared while one is written
STAGE_ROWS = 5000  # staging rows read from a file between two writes to the staging file
PROCESS_READING_FROM_BYTES = 32 * 1024 * 1024  # files from which an import's are read by processes of their own
PROCESS_READING_MAX_BYTES = 8 * 1024 * 1024  # a larger file is streamed here, not returned whole (memory)
# The settings reading a file depends on, given to the reading processes.
READING_SETTINGS = ("IMPORT_MAX_FILE_BYTES", "IMPORT_MAX_RECORD_CHARS", "IMPORT_MAX_TEXT_CHARS")


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
        self.staging = Staging(Path(staging_path))
        self._by_name: FilesByName | None = None
        self._known_folders = KnownFolders()
        self._chunk = min(self.batch_size, MIN_CHUNK)  # samples per transaction, adapted as they are written
        self._processes: Executor | None = None

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
        if file.kind == MISSING:
            self.staging.clear_stage(f"file:{index}")
            self.staging.add_findings(f"file:{index}", [(file_seq(index), False, file.rel, "文件已不存在（任务创建之后被移走或删除）")])
            self.staging.db.execute("INSERT OR REPLACE INTO files (no, shape, encoding_used, records) "
                                    "VALUES (?, '', 'utf-8', 0)", (index,))
            return 0
        return self.stage_file(index, read_records(self.root, file, index, self.options.encoding), on_bytes=on_bytes)

    def stage_file(self, index: int, readings: Iterable[FileReading], *, on_bytes=None) -> int:
        """Stage the records `read_records` read from file `index`, in one transaction of the
        staging file (replacing an earlier reading of it); returns how many records it has."""
        db, stage = self.staging.db, f"file:{index}"
        db.execute("BEGIN")
        self.staging.clear_file(index)
        self.staging.clear_stage(stage)
        for reading in readings:
            self._stage_rows(reading.rows, reading.labels)
            if reading.findings:
                self.staging.add_findings(stage, reading.findings)
            if reading.end is not None:
                shape, encoding_used = reading.end
                db.execute("INSERT OR REPLACE INTO files (no, shape, encoding_used, records) VALUES (?, ?, ?, ?)",
                           (index, shape, encoding_used, reading.count))
                db.execute("COMMIT")
                return reading.count
            if on_bytes is not None:
                on_bytes(reading.count)
        raise RuntimeError(f"reading {self.files[index].rel} ended without its last part")

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
        self.staging.add_findings("plan", [(file_seq(index) - 1, True, note.location, note.message)
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
        classes = resolve_classes(self.staging, known, create_classes=self.options.create_classes)
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

    # ---- batches
    def prepare_batch(self, k: int, *, pool: ThreadPoolExecutor | None = None) -> BatchOutcome:
        """Assemble batch `k`'s samples from their staged records, choose each one's class and store
        its image: in the import's processes where it has them (`prepare_in_processes`, PROCESS_CHUNK
        samples to a process at a time), else here, the images in `pool`'s threads; no database write."""
        plan = self.staging.get("plan")
        stage = f"batch:{k}"
        with self.staging.lock:
            self.staging.clear_stage(stage)
            self.staging.db.execute("DELETE FROM unmapped WHERE batch = ?", (k,))
        first, last = k * self.batch_size + 1, min((k + 1) * self.batch_size, plan["samples"])
        folder = f"datasets/{plan['dataset_id']}"
        if self._processes is not None:
            task = partial(assemble_and_store, staging_path=self.staging.path, files=self.files,
                           by_label=plan["by_label"], root=self.root, options=self.options, folder=folder)
            parts = [future.result() for future in
                     [self._processes.submit(task, start, min(last, start + PROCESS_CHUNK - 1))
                      for start in range(first, last + 1, PROCESS_CHUNK)]]
        else:
            rows, shapes = batch_rows(self.staging, first=first, last=last)
            parts = [assemble_rows(rows, files=self.files, shapes=shapes, by_label=plan["by_label"])]
        outcome = BatchOutcome()
        findings: list[tuple[int, bool, str, str]] = []
        for part in parts:
            findings.extend(part.findings)
            outcome.others.update(part.others)
        entries = [entry for part in parts for entry in part.entries]
        # The samples whose image is still to be stored: every path of theirs in turn, with the index
        # of files by name (in the staging file), in threads.
        to_store = [entry[0] for entry in entries if isinstance(entry, tuple)]
        own_pool = pool is None and bool(to_store)
        if own_pool:
            pool = ThreadPoolExecutor(max_workers=settings.IMPORT_IMAGE_WORKERS)
        try:
            stored = iter(list((pool.map if pool else map)(lambda item: self._image_of(item, folder), to_store)))
        finally:
            if own_pool:
                pool.shutdown()
        unmapped = []
        for entry in entries:
            if not isinstance(entry, tuple):
                outcome.records.append(entry)
                continue
            (item, label), (image, error) = entry, next(stored)
            if isinstance(error, Unmapped):
                written, _, location, seq = item.images[0]
                unmapped.append((seq, k, written, location))
            elif error is not None:
                findings.append((item.images[0][3], False, item.images[0][2], f"{item.external_id}：{error.message}"))
            else:
                outcome.records.append(record_of(item, label, image))
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
                let_waiting_writers_first()  # a reviewer's save goes before the next batch (SQLite)
                began = time.monotonic()
                saved = classification_records_save(dataset=dataset, records=chunk, categories=definitions)
                seconds = time.monotonic() - began
                for name, value in asdict(saved).items():
                    setattr(outcome.saved, name, getattr(outcome.saved, name) + value)
                start += len(chunk)
                # Toward TRANSACTION_SECONDS, growing at most twice as big at a time: one quick
                # transaction (a warm cache, an idle machine) must not make the next one long.
                fitting = int(TRANSACTION_SECONDS * len(chunk) / seconds) if seconds > 0 else self.batch_size
                self._chunk = max(MIN_CHUNK, min(self.batch_size, 2 * self._chunk, fitting))
        self.record_batch(k, outcome.as_json())
        self._keep_statistics_current(len(records))
        return outcome

    def _keep_statistics_current(self, written: int) -> None:
        """Refresh the database's statistics of the tables an import grows (`analyze_tables`) once
        it has written ANALYZE_FROM samples, then each time it has written as many again as in all
        before: a few times per import, whatever its size. (Counted in the staging file, which the
        job's items share.)"""
        total = self.staging.get("samples_written", 0) + written
        self.staging.put("samples_written", total)
        if total >= self.staging.get("analyze_at", ANALYZE_FROM):
            analyze_tables(Sample, Reasoning, LabelSuspicion)
            self.staging.put("analyze_at", 2 * total)

    def record_batch(self, k: int, result: dict) -> None:
        with self.staging.lock:
            self.staging.db.execute("INSERT OR REPLACE INTO batches (k, result) VALUES (?, ?)",
                                    (k, json.dumps(result, ensure_ascii=False)))

    def prepare_in_processes(self, processes: Executor | None) -> None:
        """From now on, assemble batches and store their images in `processes` (`_batch_processes`);
        None: here, the images in threads."""
        self._processes = processes

    def _ensure_by_name(self) -> None:
        if self._by_name is None and self.options.image_root is not None:
            with self.staging.lock:
                if self._by_name is None:
                    self._by_name = FilesByName(self.options.image_root, self.staging)

    def _image_of(self, item: Pending, folder: str) -> tuple[str, Exception | None]:
        """The stored image of a sample ("" when it has none) or the error that stopped it."""
        if not item.images:
            return "", None
        self._ensure_by_name()
        try:
            return store_first_image(item.images, item.external_id, root=self.root, options=self.options,
                                     folder=folder, by_name=self._by_name, known=self._known_folders), None
        except (Unmapped, ApplicationError) as exc:
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
            report.problems.append(unmapped_problem(unmapped, image, location))
            report.problems_total += 1
        if report.samples_imported:
            report.classes_created = list(plan.get("new") or [])
        return report


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
        with _reading_processes(total_bytes) as readers:
            for index, readings in _file_readings(job, readers):
                if readings is None:
                    job.read_file(index)
                else:
                    job.stage_file(index, readings)
                read_bytes += job.files[index].size
                if progress is not None:
                    progress(ImportProgress("read", read_bytes, total_bytes))
        batches = job.prepare()
        samples = job.staging.get("plan")["samples"]
        done = 0
        with _batch_processes(samples) as processes, \
                ThreadPoolExecutor(max_workers=settings.IMPORT_IMAGE_WORKERS) as images, \
                ThreadPoolExecutor(max_workers=BATCHES_AHEAD) as ahead:
            job.prepare_in_processes(processes)
            # The next batches are assembled and their images stored while this one is written.
            upcoming = deque(ahead.submit(job.prepare_batch, k, pool=images)
                             for k in range(min(BATCHES_AHEAD, batches)))
            for k in range(batches):
                outcome = upcoming.popleft().result()
                if k + BATCHES_AHEAD < batches:
                    upcoming.append(ahead.submit(job.prepare_batch, k + BATCHES_AHEAD, pool=images))
                job.save_batch(k, outcome)
                done = min(samples, done + job.batch_size)
                if progress is not None:
                    progress(ImportProgress("save", done, samples))
        return job.finish()
    finally:
        if job is not None:
            job.close()
        staging.unlink(missing_ok=True)


def _may_use_processes(large_enough: bool) -> bool:
    """Whether a step of an import large enough for it may run in processes: IMPORT_PROCESSES is
    not 0, and this process may start processes (not a daemonic pool worker)."""
    return large_enough and settings.IMPORT_PROCESSES > 0 and may_start_processes()


def _reading_processes(total_bytes: int) -> contextlib.AbstractContextManager[Executor | None]:
    """Processes to read an import's files in (parsed, checked and made into staging rows, which
    this process then stages), or None: for less than PROCESS_READING_FROM_BYTES of files, with
    IMPORT_PROCESSES = 0, or in a daemonic process."""
    if not _may_use_processes(total_bytes >= PROCESS_READING_FROM_BYTES):
        return contextlib.nullcontext()
    return worker_processes(settings.IMPORT_PROCESSES, with_apps=True, setting_names=READING_SETTINGS)


def _file_readings(job: ClassificationImport, readers: Executor | None) -> Iterator[tuple[int, list[FileReading] | None]]:
    """(index, what reading it gave) for every file of `job`, in order; None: the file is to be read
    here (no processes, a missing file, or one over PROCESS_READING_MAX_BYTES, which is streamed
    here rather than held whole in memory). A few files are read ahead."""
    def by_process(file: SourceFile) -> bool:
        return readers is not None and file.kind != MISSING and file.size <= PROCESS_READING_MAX_BYTES

    ahead: deque = deque()
    upcoming = iter(enumerate(job.files))

    def read_next() -> None:
        index, file = next(upcoming, (None, None))
        if file is not None:
            ahead.append((index, readers.submit(read_records_whole, job.root, file, index, job.options.encoding)
                          if by_process(file) else None))

    for _ in range(2 * settings.IMPORT_PROCESSES):
        read_next()
    while ahead:
        index, future = ahead.popleft()
        read_next()
        yield index, future.result() if future is not None else None


def _batch_processes(samples: int) -> contextlib.AbstractContextManager[Executor | None]:
    """Processes to assemble an import's batches and store their images in (started with the first
    batch), or None: for fewer than PROCESS_BATCHES_FROM samples (starting them costs more than it
    saves), with IMPORT_PROCESSES = 0, or in a daemonic process, which may not start processes."""
    if not _may_use_processes(samples >= PROCESS_BATCHES_FROM):
        return contextlib.nullcontext()
    return image_store_processes(settings.IMPORT_PROCESSES, with_apps=True)


@dataclass
class FileReading:
    """Part of what `read_records` read from one file: rows and labels to stage, findings, the
    records read so far; the last part also has `end`: (the file's shape, the encoding used)."""

    rows: list[tuple]
    labels: list[tuple]
    findings: list[tuple[int, bool, str, str]]
    count: int
    end: tuple[str, str] | None = None


def read_records(root: Path, file: SourceFile, index: int, encoding: str | None) -> Iterator[FileReading]:
    """The records of file `index`, streamed, checked and made into staging rows, STAGE_ROWS at a
    time. No database: the import stages them, and a process of its own can run this for it."""
    base_seq = file_seq(index)
    stream = iter_record_file(root / file.rel, file.rel, encoding=encoding, force_lines=file.rel.lower().endswith(".jsonl"))
    findings: list[tuple[int, bool, str, str]] = []
    rows: list[tuple] = []
    labels: list[tuple] = []
    count = 0
    hard = file.kind in (MODE, MANIFEST)
    # A file names few classes: each (name, origin) is staged once, at its first record, as the
    # staging file's INSERT OR IGNORE would keep it (once per record, it was 3 % of a large import).
    labels_seen: set[tuple[str, str]] = set()
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
            external_id, kept = check_record(raw, file, notes)
        except Rejected as exc:
            findings.append((seq, False, raw.location, str(exc)))
            continue
        findings.extend((seq, True, raw.location, note) for note in notes)
        rows.append((seq, external_id, index, file.kind, _encode_staged(kept)))
        if kept["label"]:
            label = (kept["label"], kept["where"] if hard else "")
            if label not in labels_seen:
                labels_seen.add(label)
                labels.append((label[0], file.kind, label[1], index, seq))
        if len(rows) >= STAGE_ROWS:
            yield FileReading(rows, labels, findings, count)
            rows, labels, findings = [], [], []
    if stream.error:
        findings.append((base_seq, False, file.rel, stream.error))
    if stream.encoding_used != "utf-8":
        findings.append((LAST_SEQ - FILE_SEQ + index, True, file.rel, f"不是 UTF-8 的行按 {encoding} 读取"))
    yield FileReading(rows, labels, findings, count, end=(stream.shape, stream.encoding_used))


def read_records_whole(root: Path, file: SourceFile, index: int, encoding: str | None) -> list[FileReading]:
    """`read_records` of one file, all of it: what a reading process returns."""
    return list(read_records(root, file, index, encoding))


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
