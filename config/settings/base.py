"""Settings shared by every environment.

Everything that differs between a laptop, CI and a server is read from the environment here,
through the small `env*` readers below; local/test/production only change defaults.
"""
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("DATAFIX_VAR_DIR", BASE_DIR / "var"))
# The embedded defaults (SQLite database, SQLite broker, media) live here; a fresh checkout has none.
try:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
except OSError:  # a read-only deployment that configures every path itself
    pass


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in env(name, default).split(",") if part.strip()]


# --------------------------------------------------------------------------- core
SECRET_KEY = env("SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
CSRF_FAILURE_VIEW = "config.errors.csrf_failure"  # our page (Chinese, with the menu), not Django's

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally (no CDN)
    "django_htmx",
    "template_partials",
    "django_celery_results",
    "review",
    "pipelines",
    "config.apps.DatafixConfig",
]

MIDDLEWARE = [
    "config.security.ForwardedHeadersMiddleware",  # first: later middleware reads these headers
    "django.middleware.security.SecurityMiddleware",
    "config.security.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.timestamps.timezone_context",  # the footer names TIME_ZONE
            ],
        },
    },
]

# --------------------------------------------------------------------------- database
# SQLite on a bare laptop; DATABASE_URL (e.g. postgres://user@127.0.0.1:5432/test) switches.
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
if env("DATABASE_TEST_NAME"):
    # Lets several test runs share one PostgreSQL server without clobbering each other.
    DATABASES["default"]["TEST"] = {"NAME": env("DATABASE_TEST_NAME")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL + a busy timeout let the web process and the worker write the same file; core.sqlite3 gives
    # writers fair turns at the file's one write lock (an import must not shut reviewers out).
    DATABASES["default"]["ENGINE"] = "core.sqlite3"
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # No parallel workers: the planner chose them for a queue page's OFFSET over a 100,000-sample
    # class, and starting them cost more than the query (12 ms alone, 60 ms with two workers, at
    # 1M samples on 2 cores). The big reads (exports) use server-side cursors, which never run in parallel.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c max_parallel_workers_per_gather=0"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --------------------------------------------------------------------------- auth
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Every password check (login page, admin, API token) goes through the login rate limits.
AUTHENTICATION_BACKENDS = ["config.auth.RateLimitedModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "review:home"
LOGOUT_REDIRECT_URL = "login"
# Sessions end after a working day, counted from login (no sliding renewal on each request).
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 12)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Login rate limiting (config/auth.py): failures per username+client address, and per address.
LOGIN_FAILURES_PER_USER_IP = env_int("LOGIN_FAILURES_PER_USER_IP", 5)
LOGIN_FAILURES_PER_IP = env_int("LOGIN_FAILURES_PER_IP", 50)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60)
# Addresses/networks of the reverse proxies in front of the web process: only requests from them
# may carry X-Forwarded-For/-Proto (config/proxies.py). Empty: no proxy, the headers are ignored.
# gunicorn reads the same variable for its own forwarded_allow_ips.
FORWARDED_ALLOW_IPS = env_list("FORWARDED_ALLOW_IPS")

# --------------------------------------------------------------------------- security headers
# Sent in every environment (config/security.py), so a page needing inline script fails in
# development too. Style attributes stay allowed (progress bars set widths); <style> elements don't.
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "style-src-attr": ["'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:"],
    "font-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
CONTENT_SECURITY_POLICY_REPORT_ONLY = env_bool("CONTENT_SECURITY_POLICY_REPORT_ONLY", False)
PERMISSIONS_POLICY = {
    "camera": [], "microphone": [], "geolocation": [], "payment": [], "usb": [],
}
CROSS_ORIGIN_RESOURCE_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --------------------------------------------------------------------------- i18n
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
TIME_ZONE = env("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --------------------------------------------------------------------------- files
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
EXPORT_ROOT = Path(env("EXPORT_ROOT", str(VAR_DIR / "exports")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Images are decoded only below these caps (decompression bombs, 20k x 20k PNGs).
IMAGE_MAX_BYTES = env_int("IMAGE_MAX_BYTES", 20 * 1024 * 1024)
IMAGE_MAX_PIXELS = env_int("IMAGE_MAX_PIXELS", 40_000_000)
IMAGE_ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
# Imports (core/jsonfiles.py, review/importing/): a file is capped; a record
# or a text field above its cap is refused on its line (a 60 MB line is a broken file, not a sample).
IMPORT_MAX_FILE_BYTES = env_int("IMPORT_MAX_FILE_BYTES", 512 * 1024 * 1024)
IMPORT_MAX_RECORD_CHARS = env_int("IMPORT_MAX_RECORD_CHARS", 1_000_000)
IMPORT_MAX_TEXT_CHARS = env_int("IMPORT_MAX_TEXT_CHARS", 20_000)
# import_classification streams (review/importing/): records are staged in a scratch SQLite file
# under IMPORT_STAGING_ROOT, then samples are written IMPORT_BATCH_SAMPLES per transaction (short, so
# reviewers' saves never wait long); images are checked and stored by IMPORT_IMAGE_WORKERS threads.
# Two: the threads share one interpreter lock with the writing thread, and with four its write
# transactions (which reviewers wait behind on SQLite) got up to twice as long and the import slower.
IMPORT_STAGING_ROOT = Path(env("IMPORT_STAGING_ROOT", str(VAR_DIR / "import-staging")))
IMPORT_BATCH_SAMPLES = env_int("IMPORT_BATCH_SAMPLES", 1000)
IMPORT_IMAGE_WORKERS = env_int("IMPORT_IMAGE_WORKERS", 2)
# `manage.py import_classification` uses this many processes beside its own (0: none), on other cores
# than its writes: to parse and check its files (32 MB of them or more) and to check and copy its
# images (2,000 samples or more). A job's import keeps to its own process.
IMPORT_PROCESSES = env_int("IMPORT_PROCESSES", 2)
# An import started in the browser (/jobs/new/classification_import/): the uploaded file, and a zip's
# unpacked content, at most this big; it lands in MEDIA_ROOT/imports/.
IMPORT_UPLOAD_MAX_BYTES = env_int("IMPORT_UPLOAD_MAX_BYTES", 1024 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
# Files uploaded through a page (feedback, generation sources, DPO prompts; core/uploads.py).
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 50 * 1024 * 1024)

# --------------------------------------------------------------------------- REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "datafix API",
    "DESCRIPTION": "Review and repair LLM training data.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --------------------------------------------------------------------------- Celery
# Redis when REDIS_URL is set; otherwise a SQLite-backed broker that needs no server.
REDIS_URL = env("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL or f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
# Long LLM jobs: ack after the work, requeue if the worker dies, one message at a time.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 60 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 55 * 60)
# Must exceed the longest task, or Redis redelivers a running task (see docs/reliability.md).
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 2 * 60 * 60)
# Only Redis knows visibility_timeout (the SQLAlchemy transport passes options to create_engine).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT} if REDIS_URL else {}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT} if REDIS_URL else {}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# How many times a job message may be delivered before its items are given up (poison items).
JOB_MAX_DELIVERIES = env_int("JOB_MAX_DELIVERIES", 3)
# A running job renews its lease this often; a lease not renewed for JOB_LEASE_SECONDS is stale.
JOB_HEARTBEAT_SECONDS = env_float("JOB_HEARTBEAT_SECONDS", 1.0)
JOB_LEASE_SECONDS = env_float("JOB_LEASE_SECONDS", 30.0)
# Workers resend the messages of queued jobs that could not be enqueued (broker down) this often.
JOB_SWEEP_SECONDS = env_float("JOB_SWEEP_SECONDS", 5.0)
# Each worker writes its own heartbeat row this often (the queue monitor, any broker); a worker
# silent for 3 heartbeats is shown as lost, and forgotten after WORKER_FORGET_SECONDS.
WORKER_HEARTBEAT_SECONDS = env_float("WORKER_HEARTBEAT_SECONDS", 5.0)
WORKER_FORGET_SECONDS = env_float("WORKER_FORGET_SECONDS", 24 * 3600)

# --------------------------------------------------------------------------- job kinds
# The modules that register a job kind (pipelines/jobs/kinds.py), each app's own; the engine imports
# them all before it looks a kind up.
JOB_KIND_MODULES = [
    # pipelines
    "pipelines.generation.jobkind",
    "pipelines.datasets.logs",
    "pipelines.datasets.feedback",
    "pipelines.dpo.jobkind",
    # review: its job kinds (over its samples)
    "review.jobs.classification",
    "review.jobs.info_extraction",
    "review.jobs.correction_drafts",
    "review.jobs.classification_import",
]

# --------------------------------------------------------------------------- LLM provider
# Any OpenAI-compatible server (vLLM, DashScope, OpenAI). `make run` points this at the
# bundled simulator when OPENAI_BASE_URL is unset.
OPENAI_BASE_URL = env("OPENAI_BASE_URL", "http://127.0.0.1:8765/v1")
OPENAI_API_KEY = env("OPENAI_API_KEY", "sk-simulator")
LLM_VISION_MODEL = env("LLM_VISION_MODEL", "qwen-vl-72b-instruct")
LLM_TEXT_MODEL = env("LLM_TEXT_MODEL", "qwen-72b-chat")
LLM_JUDGE_MODEL = env("LLM_JUDGE_MODEL", "qwen-72b-judge")
LLM_TIMEOUT = env_float("LLM_TIMEOUT", 60.0)
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 5)
LLM_CONCURRENCY = env_int("LLM_CONCURRENCY", 8)
# A ceiling only (0 = none): the model client finds the server's real limit itself (pipelines/llm/).
LLM_REQUESTS_PER_MINUTE = env_int("LLM_REQUESTS_PER_MINUTE", 0)
# How long one model call keeps retrying 429s (never fewer seconds than the server asks to wait).
LLM_RATE_LIMIT_MAX_WAIT = env_float("LLM_RATE_LIMIT_MAX_WAIT", 300.0)
# The adaptive rate's measuring window: servers state their limits per minute.
LLM_RATE_WINDOW_SECONDS = env_float("LLM_RATE_WINDOW_SECONDS", 60.0)
# Models that only answer streamed (DashScope's QVQ/QwQ, thinking modes): names or patterns, e.g. "qvq-*,qwq-*".
LLM_STREAM_MODELS = env_list("LLM_STREAM_MODELS", "qvq-*,qwq-*")
# The judge's sampling parameters (each job can override); empty = not sent, which OpenAI's
# o-series models need: they refuse any temperature.
LLM_JUDGE_TEMPERATURE = env("LLM_JUDGE_TEMPERATURE", "0")
LLM_JUDGE_TOP_P = env("LLM_JUDGE_TOP_P", "")
LLM_JUDGE_MAX_TOKENS = env("LLM_JUDGE_MAX_TOKENS", "")
# A job stops after this many identical configuration errors in a row (wrong model, key, parameter).
JOB_CONFIG_ERROR_LIMIT = env_int("JOB_CONFIG_ERROR_LIMIT", 3)
# Model endpoints a job may name itself (DPO's endpoint), comma-separated base URLs; a URL may also
# be any path below an entry. Empty: OPENAI_BASE_URL and the simulator (pipelines/llm/endpoints.py).
LLM_ENDPOINT_ALLOWLIST = env_list("LLM_ENDPOINT_ALLOWLIST")
# The packages whose modules answer the simulator's requests (pipelines/llm/simulator/responders/__init__.py):
# the engine's own kinds, and review's.
LLM_SIMULATOR_RESPONDER_PACKAGES = ["pipelines.llm.simulator.responders", "review.sim_responders"]
# The mode-3 length limit (字数): queue filter, sample-page warning, analysis and export alike.
TRAINSET_MAX_LENGTH = env_int("TRAINSET_MAX_LENGTH", 100)
# From this suspicion score (0–1, review/suspicion.py) a sample is listed as 疑似标签错误.
LABEL_SUSPICION_THRESHOLD = env_float("LABEL_SUSPICION_THRESHOLD", 0.4)
# Optional tokenizer for length counting; empty means characters (the team's 字数).
LENGTH_TOKENIZER = env("LENGTH_TOKENIZER", "")

# --------------------------------------------------------------------------- DPO prompt sources
# Where a DPO job's prompts and chosen answers come from, in the order the start form lists them:
# name (stored in job params) → "module.attribute" of a pipelines.dpo.sources.PromptSource. Apps
# above pipelines register theirs here, so pipelines never imports them (review: its training set).
DPO_PROMPT_SOURCES = {
    "feedback": "pipelines.dpo.sources.FEEDBACK",
    "classification": "review.dpo_sources.TRAINSET",
    "generation": "pipelines.dpo.sources.GENERATION",
    "logs": "pipelines.dpo.sources.LOGS",
    "file": "pipelines.dpo.sources.FILE",
}

# --------------------------------------------------------------------------- logging
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpx2": {"level": "WARNING"}, "openai": {"level": "WARNING"}},
}
