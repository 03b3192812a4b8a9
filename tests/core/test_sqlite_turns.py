"""core.sqlite3: writers take turns at SQLite's one write lock. (That a reviewer's save goes in
between an import's transactions is proved in tests/review/test_import_streaming.py.)"""
import threading

import pytest
from django.db import connection, connections, transaction

from core.sqlite3 import let_waiting_writers_first

@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL has no lock on the whole database")
@pytest.mark.django_db(transaction=True)
def test_a_connection_waiting_to_write_is_seen_by_the_writer_holding_the_lock():
    waiting_started, done = threading.Event(), threading.Event()

    def second_writer():
        try:
            waiting_started.set()
            with transaction.atomic():  # waits here while the test's connection writes
                pass
        finally:
            done.set()
            connections.close_all()

    with transaction.atomic():
        assert not connection.writers_waiting()
        thread = threading.Thread(target=second_writer)
        thread.start()
        assert waiting_started.wait(timeout=10)
        seen = False
        for _ in range(5000):  # the other thread takes its turn marker right before BEGIN
            if connection.writers_waiting():
                seen = True
                break
            done.wait(timeout=0.002)
        assert seen and not done.is_set()
    thread.join(timeout=30)
    assert done.is_set() and not connection.writers_waiting()


class AlwaysWaiting:
    def writers_waiting(self):
        return True


def test_a_stream_of_waiting_writers_cannot_stop_a_writer_for_good():
    assert let_waiting_writers_first(AlwaysWaiting(), max_seconds=0.05) >= 0.05


def test_databases_without_a_whole_file_lock_never_wait():
    assert let_waiting_writers_first(object()) == 0.0
