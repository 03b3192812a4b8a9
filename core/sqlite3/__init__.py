"""SQLite as datafix uses it: Django's backend with fair turns at the file's one write lock.

SQLite lets one connection write at a time; the others wait in its busy handler, which sleeps and
tries again (up to 100 ms apart). A writer that commits and begins again at once — an import
writing batch after batch — almost always wins that race, and a reviewer's save waits until the
import is over (or fails with "database is locked" after the busy timeout). So writers take turns:

- a connection about to begin a write transaction says so, holding a shared `flock` on
  `<database>-writers` while it waits for the write lock (`DatabaseWrapper`, ENGINE "core.sqlite3");
- a writer that writes flat out calls `let_waiting_writers_first()` between its transactions: it
  waits while anyone says they are waiting (at most `max_seconds`, so a stream of saves cannot
  stop it for good).

`flock` locks belong to an open file, not to a process: two connections of one process (threads)
see each other's. On other databases `let_waiting_writers_first` returns at once: PostgreSQL has no
lock on the whole database.
"""
import time

from django.db import connection as default_connection

POLL_SECONDS = 0.002


def let_waiting_writers_first(connection=None, *, max_seconds: float = 5.0) -> float:
    """Wait while another connection waits to begin a write transaction; returns the seconds waited."""
    connection = connection or default_connection
    someone_waiting = getattr(connection, "writers_waiting", None)
    if someone_waiting is None:
        return 0.0
    started = time.monotonic()
    while someone_waiting() and time.monotonic() - started < max_seconds:
        time.sleep(POLL_SECONDS)
    return time.monotonic() - started
