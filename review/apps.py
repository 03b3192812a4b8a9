from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _counts_current_after_migrate(sender, **kwargs):
    """After `migrate` the stored verdicts and counters match the data and the length limit."""
    from .counts import ensure_current

    ensure_current()


def _suspicions_after_migrate(sender, **kwargs):
    """After `migrate` every sample has its label-error suspicion (data stored before it existed)."""
    from .models import Sample
    from .suspicion import suspicions_fill_missing

    suspicions_fill_missing(samples=Sample.objects.all())


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review"

    def ready(self):
        from . import counts  # noqa: F401  (connects the receivers that keep counters current)
        from . import suspicion  # noqa: F401  (connects the receivers that keep suspicion scores current)

        post_migrate.connect(_counts_current_after_migrate, sender=self)
        post_migrate.connect(_suspicions_after_migrate, sender=self)
