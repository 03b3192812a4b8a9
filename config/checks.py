"""System checks for running datafix for a team: the broker, the long-job settings, the proxies.

They run with every `manage.py` command that runs checks (runserver, check, check --deploy), when
gunicorn starts (gunicorn.conf.py) and when a Celery worker starts (config/apps.py connects
`worker_init`), so a misconfigured Redis stops the process with a clear message instead of
silently losing job messages later.
"""
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def redis_eviction_policy(url: str, *, timeout: float = 3.0) -> str:
    """Ask the Redis server at `url` for its `maxmemory-policy` (raises redis errors)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return str(client.config_get("maxmemory-policy").get("maxmemory-policy", ""))
    finally:
        client.close()


def _redacted(url: str) -> str:
    # Never print a password from the URL in a check message or a log.
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"


@register(Tags.compatibility, "datafix")
def check_redis_noeviction(app_configs=None, **kwargs) -> list:
    """Redis used as the Celery broker must never evict keys: evicted keys are lost job messages."""
    url = settings.CELERY_BROKER_URL or ""
    if not url.startswith(REDIS_SCHEMES):
        return []
    import redis

    try:
        policy = redis_eviction_policy(url)
    except redis.exceptions.ResponseError as exc:
        # Managed Redis services often disable CONFIG; we cannot verify, so say what to check.
        return [
            Warning(
                f"Could not read maxmemory-policy from Redis at {_redacted(url)} ({exc}).",
                hint="Make sure the server runs with `maxmemory-policy noeviction` (deploy/redis.conf).",
                id="datafix.W001",
            )
        ]
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        return [
            Warning(
                f"Redis at {_redacted(url)} is not reachable ({exc}); its maxmemory-policy was not checked.",
                hint="Start Redis (deploy/redis.conf) or fix REDIS_URL.",
                id="datafix.W002",
            )
        ]
    if policy != "noeviction":
        return [
            Error(
                f"Redis at {_redacted(url)} runs with maxmemory-policy={policy!r}: under memory pressure it "
                "deletes keys, and a deleted key is a lost Celery job message.",
                hint="Set `maxmemory-policy noeviction` in redis.conf (see deploy/redis.conf) or run "
                "`redis-cli CONFIG SET maxmemory-policy noeviction` and `CONFIG REWRITE`.",
                id="datafix.E001",
            )
        ]
    return []


@register(Tags.compatibility, "datafix")
def check_long_job_settings(app_configs=None, **kwargs) -> list:
    """The Celery settings long LLM jobs depend on (see the shared RELIABILITY notes)."""
    errors = []
    hard = settings.CELERY_TASK_TIME_LIMIT
    soft = settings.CELERY_TASK_SOFT_TIME_LIMIT
    broker_is_redis = (settings.CELERY_BROKER_URL or "").startswith(REDIS_SCHEMES)
    # Only Redis has a visibility timeout; Celery's default for it is one hour.
    visibility = (settings.CELERY_BROKER_TRANSPORT_OPTIONS or {}).get("visibility_timeout", 3600) if broker_is_redis else None
    if not (settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST):
        errors.append(
            Error(
                "CELERY_TASK_ACKS_LATE and CELERY_TASK_REJECT_ON_WORKER_LOST must both be on: otherwise a "
                "worker killed mid-job loses its message.",
                id="datafix.E002",
            )
        )
    if settings.CELERY_WORKER_PREFETCH_MULTIPLIER != 1:
        errors.append(
            Error(
                "CELERY_WORKER_PREFETCH_MULTIPLIER must be 1 for long jobs (a prefetched message waits "
                "behind a long one and can outlive the visibility timeout).",
                id="datafix.E003",
            )
        )
    if soft and hard and soft >= hard:
        errors.append(
            Error(
                f"CELERY_TASK_SOFT_TIME_LIMIT ({soft} s) must be below CELERY_TASK_TIME_LIMIT ({hard} s), "
                "so a job can record its state before it is killed.",
                id="datafix.E004",
            )
        )
    if visibility is not None and hard and visibility <= hard:
        errors.append(
            Error(
                f"The Redis visibility_timeout ({visibility} s) must exceed CELERY_TASK_TIME_LIMIT ({hard} s), "
                "or Redis hands a still-running job to a second worker.",
                hint="Raise CELERY_VISIBILITY_TIMEOUT.",
                id="datafix.E005",
            )
        )
    backend_is_redis = str(settings.CELERY_RESULT_BACKEND).startswith(REDIS_SCHEMES)
    backend_visibility = (settings.CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS or {}).get(
        "visibility_timeout", 3600)
    if broker_is_redis and backend_is_redis and visibility != backend_visibility:
        errors.append(
            Error(
                "broker and result backend transport options must use the same visibility_timeout.",
                id="datafix.E006",
            )
        )
    llm_timeout = settings.LLM_TIMEOUT
    if llm_timeout and soft and llm_timeout >= soft:
        errors.append(
            Error(
                f"LLM_TIMEOUT ({llm_timeout} s) must be below CELERY_TASK_SOFT_TIME_LIMIT ({soft} s): a model "
                "call must time out before the task is interrupted.",
                id="datafix.E007",
            )
        )
    if settings.JOB_MAX_DELIVERIES < 1:
        errors.append(Error("JOB_MAX_DELIVERIES must be at least 1.", id="datafix.E008"))
    return errors


@register(Tags.security, "datafix")
def check_forwarded_proxies(app_configs=None, **kwargs) -> list:
    """FORWARDED_ALLOW_IPS must parse; the old NUM_PROXIES (which believed any sender) is gone."""
    import os

    from django.core.exceptions import ImproperlyConfigured

    from config.proxies import trusted_proxies

    problems = []
    try:
        trusted_proxies()
    except ImproperlyConfigured as exc:
        problems.append(Error(str(exc), id="datafix.E009"))
    if os.environ.get("NUM_PROXIES", "").strip() not in ("", "0"):
        problems.append(
            Warning(
                "NUM_PROXIES is no longer read: X-Forwarded-For is believed only from the proxies listed "
                "in FORWARDED_ALLOW_IPS.",
                hint="Remove NUM_PROXIES and set FORWARDED_ALLOW_IPS to the proxy's address "
                "(production default: 127.0.0.1,::1, a proxy on this machine).",
                id="datafix.W003",
            )
        )
    return problems


def run_startup_checks(process: str) -> None:
    """Run the datafix checks; raise SystemExit with every error's message if any fails.

    Called where Django's own check framework does not run: gunicorn and Celery worker start-up.
    """
    import logging

    logger = logging.getLogger("datafix.checks")
    problems = check_redis_noeviction() + check_long_job_settings() + check_forwarded_proxies()
    for problem in problems:
        text = f"{problem.id}: {problem.msg}" + (f" HINT: {problem.hint}" if problem.hint else "")
        (logger.error if problem.is_serious() else logger.warning)("%s", text)
    serious = [p for p in problems if p.is_serious()]
    if serious:
        lines = "\n".join(f"  {p.id}: {p.msg}\n    HINT: {p.hint}" if p.hint else f"  {p.id}: {p.msg}" for p in serious)
        raise SystemExit(f"datafix {process} refuses to start:\n{lines}")
