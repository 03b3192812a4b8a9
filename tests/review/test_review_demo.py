"""load_demo: the shape the issue asks for, and idempotence."""
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from PIL import Image

from pipelines.image_marker import read_marker
from review.demo import DEMO_DATASET_NAME, REFUSED_SAMPLE_ID, build_demo_records, load_demo
from review.demo_catalog import DEMO_CATEGORIES
from review.images import media_path
from review.models import Assignment, Category, Reasoning, Review, ReviewEdit, Sample
from review.parsing import parse_predicted_category

pytestmark = pytest.mark.django_db


def snapshot():
    return {
        "samples": list(Sample.objects.order_by("pk").values_list("pk", "external_id", "label_id", "image", "updated_at")),
        "reasonings": list(Reasoning.objects.order_by("pk").values_list("pk", "output", "is_correct", "updated_at")),
        "users": list(get_user_model().objects.order_by("pk").values_list("pk", "password")),
        "assignments": list(Assignment.objects.order_by("pk").values_list("pk", "reviewer_id", "category_id")),
        "reviews": list(Review.objects.order_by("pk").values_list("pk", "version")),
        "edits": ReviewEdit.objects.count(),
    }


def test_load_demo_builds_the_dataset_and_a_second_run_changes_nothing(capsys):
    load_demo(sample_count=120)
    first = snapshot()
    load_demo(sample_count=120)
    assert snapshot() == first

    categories = Category.objects.filter(dataset__name=DEMO_DATASET_NAME)
    assert categories.count() == 23 and all(c.definition for c in categories)
    assert Sample.objects.count() == 120
    refused = Sample.objects.get(external_id=REFUSED_SAMPLE_ID)
    assert refused.label.name == "换货" and not refused.reasonings.exists()
    # Every class assigned; five reviewers with about five classes each.
    assert set(Assignment.objects.values_list("category_id", flat=True)) == set(categories.values_list("pk", flat=True))
    per_reviewer = sorted(Assignment.objects.filter(reviewer__username__startswith="reviewer")
                          .values_list("reviewer__username", flat=True))
    assert {name: per_reviewer.count(name) for name in set(per_reviewer)} == {
        "reviewer1": 5, "reviewer2": 5, "reviewer3": 4, "reviewer4": 5, "reviewer5": 4}
    assert get_user_model().objects.get(username="admin").is_staff
    # Images carry the true class marker and are real PNGs inside MEDIA_ROOT.
    _, true_index = build_demo_records(sample_count=120)
    for sample in Sample.objects.order_by("?")[:5]:
        with Image.open(media_path(sample.image)) as image:
            assert image.format == "PNG" and read_marker(image) == true_index[sample.external_id]


def test_demo_records_have_the_planted_properties():
    records, true_index = build_demo_records()
    assert len(records) == 700
    names = [c.name for c in DEMO_CATEGORIES]
    with_outputs = [r for r in records if r.outputs]
    mode2_wrong = [r for r in with_outputs if parse_predicted_category(r.outputs[2], names) != r.label]
    assert 0.08 <= len(mode2_wrong) / len(with_outputs) <= 0.18
    assert sum(1 for r in with_outputs if len(r.outputs[3].replace("\n", "")) > 100) >= 30
    # Planted label errors: the label differs from the true class and modes 2/3 name the true class.
    planted = [r for r in with_outputs if names[true_index[r.external_id]] != r.label]
    assert 5 <= len(planted) <= 12
    assert all(parse_predicted_category(r.outputs[2], names) == names[true_index[r.external_id]] for r in planted)
    refused = [r for r in records if r.external_id == REFUSED_SAMPLE_ID]
    assert len(refused) == 1 and refused[0].outputs == {}


def test_load_demo_command_prints_logins_that_pass_validation(capsys):
    call_command("load_demo", sample_count=30)
    out = capsys.readouterr().out
    assert "admin / " in out and "reviewer5 / " in out
