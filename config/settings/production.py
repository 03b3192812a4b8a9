"""A server the team reaches. Refuses to start with a missing or default SECRET_KEY.

Assumes HTTPS: either a reverse proxy (nginx, Caddy) terminates TLS and sets X-Forwarded-Proto,
or gunicorn serves TLS itself (GUNICORN_CERTFILE/GUNICORN_KEYFILE, see gunicorn.conf.py).
`python manage.py check --deploy` passes with these settings (tests/test_deploy.py runs it).
"""
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .base import REDIS_URL, VAR_DIR, env, env_bool, env_int, env_list

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY or SECRET_KEY.startswith("dev-only") or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random string of at least 50 characters in production "
        "(python -c 'import secrets; print(secrets.token_urlsafe(64))')."
    )
# Old keys still verify sessions and signed values during a key rotation.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")
DEBUG = False
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "config.storage.StaticFilesStorage"},
}

# --------------------------------------------------------------------------- HTTPS
# Only trust X-Forwarded-Proto when a proxy in front sets (and strips) it; gunicorn alone: false.
# The proxy is on this machine unless told otherwise (gunicorn binds 127.0.0.1 by default); the
# headers of any other sender are dropped (config/proxies.py).
FORWARDED_ALLOW_IPS = env_list("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
if env_bool("BEHIND_TLS_PROXY", True):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
# Load balancers probe over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {**CONTENT_SECURITY_POLICY, "upgrade-insecure-requests": []}  # noqa: F405
CONTENT_SECURITY_POLICY_REPORT_ONLY = False

# --------------------------------------------------------------------------- cache
# Shared by every web process, so login rate limits hold across gunicorn workers and machines.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env("REDIS_CACHE_URL", REDIS_URL),
            "KEY_PREFIX": "datafix-cache",
            "TIMEOUT": 300,  # every key expires: the shared Redis runs with noeviction
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --------------------------------------------------------------------------- database
# Keep connections open between requests; health-checked so a restarted PostgreSQL is survived.
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 60)  # noqa: F405
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # noqa: F405

LOGGING["loggers"]["django.security"] = {"level": "WARNING"}  # noqa: F405
