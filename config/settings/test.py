"""The test suite. Same services as configured (SQLite by default, PostgreSQL/Redis in CI)."""
from .base import *  # noqa: F401,F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
