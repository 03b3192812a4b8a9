"""Django's SQLite backend, with the write intent `core.sqlite3` explains."""
import fcntl
import os

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    # (process id, path, file descriptor) of this connection's own open `<database>-writers`: own, so
    # that its flock conflicts with every other connection's, threads and forked children included.
    _intent: tuple[int, str, int] | None = None

    def _intent_file(self) -> int | None:
        if self.is_in_memory_db():
            return None
        path = f"{self.settings_dict['NAME']}-writers"
        if self._intent is not None and self._intent[:2] != (os.getpid(), path):
            self._close_intent_file()  # another database (a test run's) or a forked child
        if self._intent is None:
            self._intent = (os.getpid(), path, os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        return self._intent[2]

    def _close_intent_file(self) -> None:
        if self._intent is not None:
            pid, _, fd = self._intent
            self._intent = None
            if pid == os.getpid():
                os.close(fd)

    def _start_transaction_under_autocommit(self):
        fd = self._intent_file()
        if fd is None:
            return super()._start_transaction_under_autocommit()
        fcntl.flock(fd, fcntl.LOCK_SH)  # "waiting for the write lock", while BEGIN IMMEDIATE waits
        try:
            super()._start_transaction_under_autocommit()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def writers_waiting(self) -> bool:
        """Whether another connection is waiting to begin a write transaction."""
        fd = self._intent_file()
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False

    def _close(self):
        try:
            super()._close()
        finally:
            self._close_intent_file()
