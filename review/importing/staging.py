"""The staging file: an import's records, label names and findings in a private SQLite file (not the
application's database), numbered so that everything sorts in reading order."""
from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
from pathlib import Path
from typing import Any

from django.conf import settings

from .report import ImportProblem

# Record sequence numbers: file i's records are (i + 1) * FILE_SEQ + their position, so every
# record, and every problem found about it, sorts in reading order; re-reading a file reuses them.
FILE_SEQ = 1 << 32
LAST_SEQ = 1 << 62


def file_seq(index: int) -> int:
    return (index + 1) * FILE_SEQ


class Staging:
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
        CREATE INDEX IF NOT EXISTS labels_by_file ON labels (file_no);
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

    # A file's records are its range of sequence numbers: deleted along the primary key (its label
    # names along their own index). By `file_no` it was a scan of every record staged so far, for
    # every file (10 % of an import).
    CLEAR_FILE_RECORDS = "DELETE FROM records WHERE seq >= ? AND seq < ?"

    def clear_file(self, index: int) -> None:
        """Forget what an earlier reading of file `index` staged (its records and label names)."""
        with self.lock:
            self.db.execute(self.CLEAR_FILE_RECORDS, (file_seq(index), file_seq(index + 1)))
            self.db.execute("DELETE FROM labels WHERE file_no = ?", (index,))

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


def read_only(path: Path) -> sqlite3.Connection:
    """A connection of another process to read a staging file: its records and files are written
    before any batch is read; what the import writes meanwhile (findings, batches) is not read."""
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)


def staging_file(directory: str | Path | None = None) -> Path:
    """A new private file for an import's staging database (removed by the caller)."""
    folder = Path(directory or settings.IMPORT_STAGING_ROOT)
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="import-", suffix=".sqlite3", dir=folder)
    os.close(handle)
    return Path(name)
