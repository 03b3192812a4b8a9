"""Recompute every sample's stored verdict and the per-class counters (review.counts).

Run after changing TRAINSET_MAX_LENGTH (pages also do it by themselves the first time they see a new
limit, and `migrate` does it), or to repair counters after writing to the database by hand.
"""
from django.core.management.base import BaseCommand

from review.counts import refresh_all


class Command(BaseCommand):
    help = "Recompute the stored review verdicts and per-class counters."

    def handle(self, *args, **options):
        n = refresh_all()
        self.stdout.write(f"已重新计算 {n} 个样本的状态和各类别计数。")
