"""Project-wide wiring that belongs to no product area: the deploy checks, and the end of a command's
start-up (config/startup.py)."""
from django.apps import AppConfig

from .startup import release_collection


class DatafixConfig(AppConfig):
    name = "config"
    label = "datafix_config"
    verbose_name = "datafix deployment"

    def ready(self):
        from celery.signals import worker_init

        from . import checks  # noqa: F401  (registers the system checks)

        # Celery runs Django's checks at start-up but ignores their result; ours must stop a
        # worker that would lose messages (Redis evicting keys, visibility timeout too short).
        worker_init.connect(_check_worker_start, dispatch_uid="datafix.checks.worker_init", weak=False)
        # Last in INSTALLED_APPS: every other app is ready.
        release_collection()


def _check_worker_start(sender=None, **kwargs):
    from .checks import run_startup_checks

    run_startup_checks("worker")
