"""The test suite. Same services as configured (SQLite by default, PostgreSQL/Redis in CI)."""
from .base import *  # noqa: F401,F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests

# A real Celery worker subprocess (tests marked `worker`) must see the test database and the
# broker: SQLite tests use a file database, and without Redis each test run gets its own broker
# file (TEST_CELERY_BROKER_URL hands the test process's broker to the worker).
import os as _os  # noqa: E402
import tempfile as _tempfile  # noqa: E402

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"].setdefault("TEST", {})  # noqa: F405
    DATABASES["default"]["TEST"].setdefault(  # noqa: F405
        "NAME", _os.path.join(_tempfile.gettempdir(), f"datafix-test-{_os.getpid()}.sqlite3")
    )
CELERY_BROKER_URL = env("TEST_CELERY_BROKER_URL") or REDIS_URL or (  # noqa: F405
    f"sqla+sqlite:///{_os.path.join(_tempfile.gettempdir(), f'datafix-test-broker-{_os.getpid()}.sqlite3')}"
)
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT} if CELERY_BROKER_URL.startswith("redis") else {}  # noqa: F405
)
