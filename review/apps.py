from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _counts_current_after_migrate(sender, **kwargs):
    """After `migrate` the stored verdicts and counters match the data and the length limit."""
    from .counts import ensure_current

    ensure_current()


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review"

    def ready(self):
        from . import counts  # noqa: F401  (connects the receivers that keep counters current)

        post_migrate.connect(_counts_current_after_migrate, sender=self)
