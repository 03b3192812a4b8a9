"""load_demo: the shape the issue asks for, and idempotence."""
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from PIL import Image

from review.image_marker import read_marker
from review.demo import DEMO_DATASET_NAME, REFUSED_SAMPLE_ID, build_demo_records, load_demo
from review.demo_catalog import DEMO_CATEGORIES
from core.images import media_path
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
    assert refused.label.name == "换货页面" and not refused.reasonings.exists()
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


# The 23 classes the team's batch script lists (商品分类选项 from the seed itself), in that order.
TEAM_CLASSES = (
    "商品分类选项", "实物拍摄", "商品头图", "商品详情页截图", "下单过程中出现异常", "订单详情页面", "支付页面",
    "评论区截图页面", "物流列表页面", "物流跟踪页面", "物流异常页面", "退款页面", "退货页面", "换货页面", "购物车页面",
    "店铺页面", "活动页面", "优惠券领取页面", "账户页面", "投诉举报页面", "平台介入页面", "外部APP截图", "其他类别图片",
)


def test_the_demo_uses_the_teams_23_classes_with_definitions_of_their_own():
    assert tuple(c.name for c in DEMO_CATEGORIES) == TEAM_CLASSES
    assert DEMO_CATEGORIES[0].definition == "图片中显示商品颜色、规格选项"  # the seed's own
    assert len({c.definition for c in DEMO_CATEGORIES}) == 23
    assert all(name in TEAM_CLASSES for c in DEMO_CATEGORIES for name in c.confusable)


def test_a_demo_from_the_earlier_catalog_is_set_aside_not_mixed_in(capsys):
    from tests.factories import CategoryFactory, DatasetFactory, SampleFactory

    old = DatasetFactory(name=DEMO_DATASET_NAME)
    SampleFactory(dataset=old, label=CategoryFactory(dataset=old, name="退货退款"), external_id="old-1")
    call_command("load_demo", sample_count=30)
    assert "旧版演示数据" in capsys.readouterr().out
    old.refresh_from_db()
    assert old.name != DEMO_DATASET_NAME and old.samples.count() == 1
    new = Category.objects.filter(dataset__name=DEMO_DATASET_NAME)
    assert sorted(new.values_list("name", flat=True)) == sorted(TEAM_CLASSES)


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
