"""Running datafix for a team: production settings, web and worker processes, Redis, backups."""
import os
import re
import secrets
import shlex
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from django.core.checks import Error

from config import checks
from tests.security.servers import (
    PYTHON,
    ROOT,
    free_port,
    private_redis,
    stop_process,
    subprocess_env,
    wait_until,
)


def production_env(tmp_path: Path, **overrides) -> dict[str, str]:
    """Environment for a production-settings process with its own var dir and a random key."""
    values = {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "DATAFIX_VAR_DIR": str(tmp_path / "var"),
        "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    values.update(overrides)
    return subprocess_env(**values)


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


# --------------------------------------------------------------------------- settings


def test_check_deploy_passes_without_warnings(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    "secret_key",
    [None, "", "dev-only-insecure-key-change-me", "short-key", "a" * 64],
    ids=["missing", "empty", "default", "short", "one-character"],
)
def test_production_refuses_to_start_with_a_missing_or_weak_secret_key(tmp_path, secret_key):
    result = manage(production_env(tmp_path, SECRET_KEY=secret_key), "check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set to a random string" in result.stderr


def test_production_settings_are_secure(tmp_path):
    code = (
        "from django.conf import settings as s;"
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS >= 31536000,"
        " s.SECURE_SSL_REDIRECT, s.SECURE_CONTENT_TYPE_NOSNIFF, s.X_FRAME_OPTIONS,"
        " s.STORAGES['staticfiles']['BACKEND'] == 'config.storage.StaticFilesStorage')"
    )
    result = manage(production_env(tmp_path), "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["False", "True", "True", "True", "True", "True", "DENY", "True"]


# --------------------------------------------------------------------------- long jobs on Celery


def test_celery_is_configured_for_long_jobs():
    from config.celery import app

    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_soft_time_limit < conf.task_time_limit
    if conf.broker_url.startswith("redis"):
        assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    assert checks.check_long_job_settings() == []


def test_redis_broker_visibility_timeout_comes_from_settings_and_outlives_the_time_limit(tmp_path):
    """What a worker on a Redis broker runs with (a subprocess: settings are read at start-up)."""
    code = (
        "from config.celery import app; c = app.conf;"
        "print(c.broker_transport_options.get('visibility_timeout'), c.task_time_limit, c.task_soft_time_limit,"
        " c.task_acks_late, c.task_reject_on_worker_lost, c.worker_prefetch_multiplier)"
    )
    env = subprocess_env(REDIS_URL="redis://127.0.0.1:6399/0", DJANGO_SETTINGS_MODULE="config.settings.local",
                         DATAFIX_VAR_DIR=str(tmp_path / "var"), TEST_CELERY_BROKER_URL=None)
    result = subprocess.run([PYTHON, "-c", "import django, os; django.setup();" + code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    visibility, hard, soft, acks_late, reject, prefetch = result.stdout.split()
    assert int(visibility) > int(hard) > int(soft)
    assert (acks_late, reject, prefetch) == ("True", "True", "1")


@pytest.mark.parametrize(
    "override, error_id",
    [
        ({"CELERY_TASK_ACKS_LATE": False}, "datafix.E002"),
        ({"CELERY_WORKER_PREFETCH_MULTIPLIER": 4}, "datafix.E003"),
        ({"CELERY_TASK_SOFT_TIME_LIMIT": 4000, "CELERY_TASK_TIME_LIMIT": 3600}, "datafix.E004"),
        ({"CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
          "CELERY_BROKER_TRANSPORT_OPTIONS": {"visibility_timeout": 3600}}, "datafix.E005"),
        ({"CELERY_BROKER_URL": "redis://127.0.0.1:1/0", "CELERY_BROKER_TRANSPORT_OPTIONS": {}}, "datafix.E005"),
        ({"CELERY_BROKER_URL": "redis://127.0.0.1:1/0", "CELERY_RESULT_BACKEND": "redis://127.0.0.1:1/1",
          "CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS": {"visibility_timeout": 60}}, "datafix.E006"),
        ({"LLM_TIMEOUT": 4000.0}, "datafix.E007"),
    ],
)
def test_unsafe_long_job_settings_are_reported(settings, override, error_id):
    for name, value in override.items():
        setattr(settings, name, value)
    assert error_id in [problem.id for problem in checks.check_long_job_settings()]


# --------------------------------------------------------------------------- Redis must not evict


def test_redis_with_an_evicting_policy_is_an_error(settings, tmp_path):
    with private_redis(tmp_path / "redis", policy="allkeys-lru") as redis_server:
        settings.CELERY_BROKER_URL = redis_server.url
        problems = checks.check_redis_noeviction()
    assert [type(p) for p in problems] == [Error]
    assert problems[0].id == "datafix.E001"
    assert "maxmemory-policy='allkeys-lru'" in problems[0].msg
    assert "noeviction" in problems[0].hint


def test_redis_with_noeviction_passes(settings, tmp_path):
    with private_redis(tmp_path / "redis", policy="noeviction") as redis_server:
        settings.CELERY_BROKER_URL = redis_server.url
        assert checks.check_redis_noeviction() == []


def test_unreachable_redis_is_a_warning_not_a_crash(settings):
    settings.CELERY_BROKER_URL = f"redis://:secret-password@127.0.0.1:{free_port()}/0"
    problems = checks.check_redis_noeviction()
    assert [p.id for p in problems] == ["datafix.W002"]
    assert "secret-password" not in problems[0].msg  # credentials never reach logs


def test_sqlite_broker_needs_no_redis_check(settings):
    settings.CELERY_BROKER_URL = "sqla+sqlite:////tmp/broker.sqlite3"
    assert checks.check_redis_noeviction() == []


@pytest.mark.worker
def test_worker_refuses_to_start_on_an_evicting_redis(tmp_path):
    with private_redis(tmp_path / "redis", policy="allkeys-lru") as redis_server:
        env = subprocess_env(
            REDIS_URL=redis_server.url, DATAFIX_VAR_DIR=str(tmp_path / "var"), DATABASE_URL=None,
            DJANGO_SETTINGS_MODULE="config.settings.local",
        )
        result = subprocess.run(
            [str(ROOT / ".venv/bin/celery"), "-A", "config", "worker", "-Q", "default", "--concurrency", "1",
             "-l", "warning"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
        )
    assert result.returncode != 0
    assert "datafix worker refuses to start" in result.stderr
    assert "maxmemory-policy='allkeys-lru'" in result.stderr


# --------------------------------------------------------------------------- processes


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def test_procfile_runs_web_release_and_workers_on_every_job_queue():
    entries = procfile()
    assert set(entries) == {"release", "web", "worker"}
    assert entries["web"].startswith("gunicorn -c gunicorn.conf.py")
    assert "check --deploy" in entries["release"] and "migrate" in entries["release"]
    worker = shlex.split(entries["worker"])
    queues = set(worker[worker.index("-Q") + 1].split(","))
    from pipelines.jobs.kinds import _REGISTRY, get_handler
    from pipelines.models import JobKind

    for kind in JobKind.values:
        try:
            get_handler(kind)
        except LookupError:
            continue  # a kind whose module has not landed yet has no queue to serve
    handler_queues = {handler.queue for handler in _REGISTRY.values()}
    assert handler_queues <= queues, f"queues no worker listens on: {handler_queues - queues}"
    assert {"classification", "generation", "extraction", "dpo", "default"} <= queues


@pytest.mark.worker
def test_gunicorn_serves_pages_and_static_files_with_security_headers(tmp_path):
    env = production_env(tmp_path, DATABASE_URL=None, REDIS_URL=None, WEB_CONCURRENCY="1")
    for args in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
        result = manage(env, *args, timeout=300)
        assert result.returncode == 0, result.stderr
    port = free_port()
    env["PORT"] = str(port)
    server = subprocess.Popen(  # no --bind: the default must be the loopback address
        [str(ROOT / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        import httpx2 as httpx

        def get(path, **headers):
            try:
                return httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=5)
            except httpx.TransportError:
                return None

        wait_until(lambda: get("/healthz"), timeout=60, what="gunicorn to answer /healthz")
        health = get("/healthz")
        assert (health.status_code, health.text) == (200, "ok")  # plain HTTP allowed for probes

        plain = get("/login/")
        assert plain.status_code == 301 and plain.headers["location"].startswith("https://")

        page = get("/login/", **{"X-Forwarded-Proto": "https"})
        assert page.status_code == 200
        assert "登录" in page.text
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp.split(
            "script-src")[1].split(";")[0]
        assert "frame-ancestors 'none'" in csp
        assert page.headers["strict-transport-security"].startswith("max-age=31536000")
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["x-frame-options"] == "DENY"
        assert "secure" in page.headers["set-cookie"].lower()  # csrftoken cookie

        css_path = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', page.text)
        assert css_path, "whitenoise's manifest storage should hash static file names"
        css = get(css_path.group(1), **{"X-Forwarded-Proto": "https"})
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert "max-age=315360000" in css.headers["cache-control"]  # hashed files cached forever
    finally:
        stop_process(server)
    log = server.stdout.read()
    assert "refuses to start" not in log
    assert f"Listening at: http://127.0.0.1:{port}" in log


# --------------------------------------------------------------------------- backups


def test_backup_script_dumps_postgres_and_archives_media(tmp_path):
    """deploy/backup.sh against the PostgreSQL server the suite uses (or the local default one)."""
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        # The SQLite run still proves the script on this machine's PostgreSQL (CI runs one).
        database_url = os.environ.get("BACKUP_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    media = tmp_path / "backup-source" / "media"
    (media / "scenes").mkdir(parents=True)
    (media / "scenes" / "图片1.png").write_bytes(b"\x89PNG fake bytes")
    exports = tmp_path / "backup-source" / "exports"
    exports.mkdir()
    (exports / "trainset.jsonl").write_text('{"a": 1}\n')
    dest = tmp_path / "backups"
    env = subprocess_env(DATABASE_URL=database_url, MEDIA_ROOT=str(media), EXPORT_ROOT=str(exports))
    result = subprocess.run(
        ["bash", str(ROOT / "deploy/backup.sh"), str(dest)], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    [backup] = list(dest.iterdir())
    assert re.fullmatch(r"\d{8}T\d{6}Z", backup.name)
    assert sorted(p.name for p in backup.iterdir()) == ["SHA256SUMS", "db.dump", "exports.tar.gz", "media.tar.gz"]
    listing = subprocess.run(
        [shutil.which("pg_restore") or "pg_restore", "--list", str(backup / "db.dump")],
        capture_output=True, text=True, timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    assert "; Archive created at" in listing.stdout and "dbname:" in listing.stdout
    with tarfile.open(backup / "media.tar.gz") as archive:
        assert "./scenes/图片1.png" in archive.getnames()
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=backup, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def test_every_worker_queue_serves_a_job_kind():
    """Queues per job kind: a queue the workers listen on that no kind uses means that kind's long
    model calls share the default queue with short work."""
    from pipelines.jobs.kinds import get_handler
    from pipelines.models import JobKind

    worker = shlex.split(procfile()["worker"])
    queues = set(worker[worker.index("-Q") + 1].split(",")) - {"default"}
    used = {get_handler(kind).queue for kind in JobKind.values}
    assert queues <= used, f"no job kind is routed to {sorted(queues - used)}"


@pytest.mark.worker
def test_gunicorn_refuses_to_start_on_an_evicting_redis(tmp_path):
    with private_redis(tmp_path / "redis", policy="volatile-lru") as redis_server:
        env = production_env(tmp_path, DATABASE_URL=None, REDIS_URL=redis_server.url, WEB_CONCURRENCY="1",
                             PORT=str(free_port()))
        result = subprocess.run([str(ROOT / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "datafix web refuses to start" in result.stdout + result.stderr
    assert "maxmemory-policy='volatile-lru'" in result.stdout + result.stderr
