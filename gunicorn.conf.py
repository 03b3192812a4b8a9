"""gunicorn settings for the web process (`gunicorn -c gunicorn.conf.py config.wsgi`).

Everything can be overridden from the environment; defaults suit one web machine with a TLS
proxy in front on the same machine. Static files are served by whitenoise from the same process.
"""
import multiprocessing
import os

wsgi_app = "config.wsgi:application"
# The loopback address: only the proxy on this machine reaches gunicorn. GUNICORN_BIND=0.0.0.0:8000
# to listen elsewhere (then list the proxy in FORWARDED_ALLOW_IPS, or its headers are dropped).
bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
# Pages are short DB reads/writes; model calls run in Celery, never in a web request.
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 9)))
threads = int(os.environ.get("GUNICORN_THREADS", 2))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))  # large exports are written by jobs, not requests
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak never takes the server down.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 2000))
max_requests_jitter = 200
limit_request_line = 8190
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
proc_name = "datafix-web"
# Proxies allowed to set X-Forwarded-Proto (comma-separated addresses or networks); Django reads
# the same variable (config/proxies.py).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# No control socket in $HOME: several gunicorns on one machine would fight over it.
control_socket_disable = True
# Direct TLS without a proxy: set both paths (and BEHIND_TLS_PROXY=false for Django).
certfile = os.environ.get("GUNICORN_CERTFILE") or None
keyfile = os.environ.get("GUNICORN_KEYFILE") or None


def on_starting(server):
    """Refuse to start when Redis would evict job messages or the long-job settings are unsafe."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    django.setup()
    from config.checks import run_startup_checks

    run_startup_checks("web")
