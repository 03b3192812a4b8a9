"""Fixtures shared by the whole suite."""
import pytest

from tests.factories import AssignmentFactory, CategoryFactory, DatasetFactory, UserFactory

# Fixtures of one area that tests elsewhere use too (browser, security, exports): registered here
# once, so no test imports a fixture by hand.
pytest_plugins = [
    "tests.browser.fixtures",
    "tests.pipelines.dpo.fixtures",
    "tests.pipelines.generation.fixtures",
    "tests.pipelines.jobs.fixtures",
    "tests.review.fixtures",
]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Every test writes images and exports into its own temporary media root."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EXPORT_ROOT = tmp_path / "exports"
    settings.MEDIA_ROOT.mkdir()
    settings.EXPORT_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", is_staff=True, is_superuser=True)


@pytest.fixture
def reviewer(db):
    return UserFactory(username="reviewer1")


@pytest.fixture
def staff_client(client, admin_user):
    """The test client signed in as the staff user."""
    client.force_login(admin_user)
    return client


@pytest.fixture
def reviewer_client(client, reviewer):
    """The test client signed in as `reviewer` (no staff rights)."""
    client.force_login(reviewer)
    return client


@pytest.fixture
def other_reviewer(db):
    return UserFactory(username="reviewer2")


@pytest.fixture
def dataset(db):
    return DatasetFactory(name="scenes")


@pytest.fixture
def assigned_category(dataset, reviewer):
    """A category of `dataset` assigned to `reviewer`."""
    category = CategoryFactory(dataset=dataset, name="商品分类选项", definition="图片中显示商品颜色、规格选项")
    AssignmentFactory(reviewer=reviewer, category=category)
    return category


@pytest.fixture
def unassigned_category(dataset, other_reviewer):
    category = CategoryFactory(dataset=dataset, name="换货", definition="用户申请更换商品")
    AssignmentFactory(reviewer=other_reviewer, category=category)
    return category


# --------------------------------------------------------------------------- LLM simulator (jobs area)
@pytest.fixture
def llm_simulator(settings):
    """The project's OpenAI-compatible simulator on a free port, with the app pointed at it.

    Yields a `pipelines.llm.simulator.server.SimulatorHandle`: `.base_url`, `.set_faults(rate_429=…)`,
    `.request_count()`, `.answered_counts()`, `.stop()`. Retries are made quick for tests.
    """
    from pipelines.llm import client as llm_client
    from pipelines.llm.simulator.server import serve_in_thread

    handle = serve_in_thread(port=0)
    settings.OPENAI_BASE_URL = handle.base_url
    settings.OPENAI_API_KEY = "sk-test-simulator-key"
    settings.LLM_TIMEOUT = 5.0
    settings.LLM_REQUESTS_PER_MINUTE = 0
    settings.LLM_RATE_WINDOW_SECONDS = 1.0  # the adaptive rate measures in scaled-down time
    original_backoff = llm_client.BACKOFF_BASE_SECONDS
    llm_client.BACKOFF_BASE_SECONDS = 0.02
    try:
        yield handle
    finally:
        llm_client.BACKOFF_BASE_SECONDS = original_backoff
        handle.stop()


def _database_url_for_worker() -> str:
    """The URL of the database this test runs against (the test database), for a subprocess."""
    from urllib.parse import quote

    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = quote(s.get("USER") or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    host = s.get("HOST") or "127.0.0.1"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth}{'@' if auth else ''}{host}{port}/{s['NAME']}"


class CeleryWorkerProcess:
    """A real `celery worker` subprocess against the test database and broker."""

    def __init__(self, env: dict, log_path):
        import subprocess
        import sys
        from pathlib import Path

        self.log_path = log_path
        self._log = open(log_path, "ab")
        celery = Path(sys.executable).with_name("celery")
        self.process = subprocess.Popen(
            [str(celery), "-A", "config", "worker", "-l", "info", "-P", "prefork", "-c", "1",
             "-Q", "default,classification,generation,extraction,dpo",
             "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"test-{id(self)}@%h"],
            cwd=str(Path(__file__).resolve().parent.parent), env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() takes the pool children too
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        import time

        from tests.security.servers import scaled

        timeout = scaled(timeout)  # a worker starts slowly on a loaded machine
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready." in self.log():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"celery worker not ready after {timeout}s:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool children (no graceful shutdown, no acks)."""
        import os
        import signal

        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        import os
        import signal
        import subprocess

        from tests.security.servers import scaled

        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=scaled(15))  # a warm shutdown is slow on a loaded machine
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@pytest.fixture
def celery_worker_process(settings, tmp_path):
    """A factory starting real Celery worker subprocesses (`start()` → a ready CeleryWorkerProcess).

    Use with `@pytest.mark.django_db(transaction=True)` so the worker sees committed test data.
    The worker gets the test database, the broker, MEDIA_ROOT and the model provider settings of
    this test (point them first, e.g. request `llm_simulator` before this fixture).
    """
    import os

    from config.celery import app as celery_app

    workers: list[CeleryWorkerProcess] = []

    def start(**extra_env) -> CeleryWorkerProcess:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_TEST_NAME",)}
        env.update({
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": _database_url_for_worker(),
            "TEST_CELERY_BROKER_URL": celery_app.conf.broker_url,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "OPENAI_BASE_URL": settings.OPENAI_BASE_URL,
            "OPENAI_API_KEY": settings.OPENAI_API_KEY,
            "LLM_TIMEOUT": str(settings.LLM_TIMEOUT),
            "LLM_REQUESTS_PER_MINUTE": str(settings.LLM_REQUESTS_PER_MINUTE),
            "LLM_RATE_WINDOW_SECONDS": str(settings.LLM_RATE_WINDOW_SECONDS),
            "DATAFIX_VAR_DIR": str(tmp_path / "worker-var"),
        })
        env.update({k: str(v) for k, v in extra_env.items()})
        worker = CeleryWorkerProcess(env, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture(autouse=True)
def fresh_celery_connections(request):
    """Tests with real workers start with fresh broker connections in this process: an earlier test
    may have pointed the Celery app elsewhere and closed its pools ("Acquire on closed pool")."""
    if request.node.get_closest_marker("worker"):
        from kombu import pools

        from config.celery import app as celery_app

        pools.reset()
        celery_app._pool = None
        celery_app.amqp._producer_pool = None
    yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Browser tests skipped for want of Chromium (tests/browser/fixtures.py) all report from the
    fixture's place instead of each test's, so the `-ra` summary folds them into one line."""
    report = yield
    if report.skipped and isinstance(report.longrepr, tuple) and "browser tests skipped:" in report.longrepr[2]:
        from tests.browser import fixtures as browser_fixtures

        report.longrepr = (browser_fixtures.__file__, browser_fixtures.SKIP_LINE, report.longrepr[2])
    return report
