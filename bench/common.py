"""What the benchmarks share: a throwaway database and request timing."""
import shutil
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def throwaway_database(prefix: str):
    """A fresh database for one benchmark, destroyed afterwards: a temporary SQLite file, or a
    `test_…` database on the configured server when DATABASE_URL is set. Yields a temporary folder
    (removed afterwards too) for the benchmark's files."""
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    settings.DEBUG = False  # no query log growing through hundreds of thousands of rows
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    if connection.vendor == "sqlite":
        connection.settings_dict.setdefault("TEST", {})["NAME"] = str(tmp / "bench.sqlite3")
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield tmp
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
        shutil.rmtree(tmp, ignore_errors=True)


def request_times(client, urls: list[str], *, warm: int = 3) -> tuple[float, float]:
    """Median and p95 server time (ms) of GETting `urls` through the test client, after `warm`
    untimed requests (caches, template loading)."""
    for url in urls[:warm]:
        client.get(url)
    durations = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url)
        durations.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            print(f"   ! {url} -> {response.status_code}")
    durations.sort()
    return statistics.median(durations), durations[max(0, int(round(0.95 * len(durations))) - 1)]
