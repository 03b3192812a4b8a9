"""The floor of the label-error ranking (the figures `make bench` prints for `bench_label_errors`):
precision@10 ≥ 0.8 — the target — on the demo data and on a second set generated with another seed
and label-error rate, from the evidence as loaded (no model calls); recall@50 ≥ 0.85."""
import pytest

from review.demo import generate_dataset
from review.models import Sample
from review.suspicion import ranked_samples, ranking_quality


@pytest.mark.parametrize("seed, error_rate", [(20261128, None), (4242, 0.03)], ids=["demo", "second-set"])
def test_the_ranking_finds_the_planted_label_errors(db, seed, error_rate):
    generated = generate_dataset(name=f"floor-{seed}", seed=seed, label_error_rate=error_rate, images=False)
    ranked = list(ranked_samples(samples=Sample.objects.filter(dataset=generated.dataset))
                  .values_list("external_id", flat=True))
    at10, _, at50 = ranking_quality(ranked, generated.wrong_label_ids)
    assert at10.precision >= 0.8, f"precision@10 {at10.precision:.2f}"
    assert at50.recall >= 0.85, f"recall@50 {at50.recall:.2f}"
