"""Fixtures of the review tests, registered for the whole suite in tests/conftest.py (pytest_plugins):
`sample` / `other_sample` (a sample of the reviewer's class and of a class nobody assigned them), and
`scene`, a small dataset whose every analysis and export number is known by hand.

Classes A=商品分类选项 (position 0), B=换货 (1), C=退货退款 (2). Mode 2 / mode 3 per sample:

    a1  m1 A  m2 A ok      m3 A ok  (50 字)              → kept
    a2        m2 →B wrong  m3 A ok   cause overlap        → kept            (wrong→right)
    a3        m2 A ok      m3 →B wrong, corrected         → corrected       (right→wrong)
    a4        m2 →B wrong  m3 →B wrong, cause label_wrong, label error (suggest B) → listed
    b1        m2 B ok      m3 B ok but 150 字             → pending too_long
    b2        m2 unparsed  m3 unparsed, cause model_weak  → pending unparsed
    b3        m2 →A wrong  m3 →A wrong, cause overlap     → pending wrong
    b4        m2 →A wrong  m3 B ok, cause overlap         → kept            (wrong→right)
    c1        m2 C ok      (no mode 3)                    → pending missing

reviewer1 is assigned A, reviewer2 B; nobody C.
"""
from dataclasses import dataclass

import pytest

from review.models import Cause, Mode
from tests.factories import (
    AssignmentFactory, CategoryFactory, ReasoningFactory, ReviewFactory, SampleFactory, UserFactory,
)
from tests.review.samples import make_sample


@dataclass
class Scene:
    dataset: object
    a: object
    b: object
    c: object
    reviewer: object
    other_reviewer: object
    admin: object
    samples: dict


def _reason(sample, mode, predicted, *, output=None, length=None):
    # is_correct is given explicitly: the shared factory's default reads an attribute it lacks.
    kwargs = {
        "sample": sample, "mode": mode, "predicted_category": predicted,
        "is_correct": None if predicted is None else predicted.pk == sample.label_id,
    }
    if output is not None:
        kwargs["output"] = output
    reasoning = ReasoningFactory(**kwargs)
    if length is not None:
        reasoning.length = length
        reasoning.save(update_fields=["length"])
    return reasoning


@pytest.fixture
def scene(db):
    from tests.factories import DatasetFactory

    dataset = DatasetFactory(name="scenes")
    a = CategoryFactory(dataset=dataset, name="商品分类选项", definition="图片中显示商品颜色、规格选项", position=0)
    b = CategoryFactory(dataset=dataset, name="换货", definition="用户申请更换商品", position=1)
    c = CategoryFactory(dataset=dataset, name="退货退款", definition="退货申请或退款进度", position=2)
    reviewer = UserFactory(username="reviewer1")
    other = UserFactory(username="reviewer2")
    admin = UserFactory(username="admin", is_staff=True, is_superuser=True)
    AssignmentFactory(reviewer=reviewer, category=a)
    AssignmentFactory(reviewer=other, category=b)
    s = {}
    for name, label in [("a1", a), ("a2", a), ("a3", a), ("a4", a), ("b1", b), ("b2", b), ("b3", b), ("b4", b), ("c1", c)]:
        s[name] = SampleFactory(dataset=dataset, label=label, external_id=name, image=f"images/{name}.png")
    W, L = Mode.WITH_DEFINITIONS, Mode.LIMITED
    _reason(s["a1"], Mode.FREE, a)
    _reason(s["a1"], W, a)
    _reason(s["a1"], L, a, output="图片显示颜色和规格选项。类别：商品分类选项", length=50)
    _reason(s["a2"], W, b)
    _reason(s["a2"], L, a, output="规格选项页面。类别：商品分类选项", length=50)
    _reason(s["a3"], W, a)
    _reason(s["a3"], L, b, output="<script>alert(1)</script>类别：换货", length=40)
    _reason(s["a4"], W, b)
    _reason(s["a4"], L, b, length=40)
    _reason(s["b1"], W, b)
    _reason(s["b1"], L, b, output="很长的分析" * 30 + "类别：换货", length=150)
    _reason(s["b2"], W, None, output="看不出来")
    _reason(s["b2"], L, None, output="无法判断")
    _reason(s["b3"], W, a)
    _reason(s["b3"], L, a)
    _reason(s["b4"], W, a)
    _reason(s["b4"], L, b, output="用户申请换货。类别：换货", length=30)
    _reason(s["c1"], W, c)
    ReviewFactory(sample=s["a2"], reviewer=reviewer, cause=Cause.DEFINITIONS_OVERLAP)
    ReviewFactory(sample=s["a3"], reviewer=reviewer, corrected_output="图片是颜色规格选项。类别：商品分类选项",
                  corrected_category=a, corrected_length=18)
    ReviewFactory(sample=s["a4"], reviewer=reviewer, cause=Cause.LABEL_WRONG, label_error=True, suggested_label=b)
    ReviewFactory(sample=s["b2"], reviewer=other, cause=Cause.MODEL_WEAK)
    ReviewFactory(sample=s["b3"], reviewer=other, cause=Cause.DEFINITIONS_OVERLAP)
    ReviewFactory(sample=s["b4"], reviewer=other, cause=Cause.DEFINITIONS_OVERLAP)
    return Scene(dataset=dataset, a=a, b=b, c=c, reviewer=reviewer, other_reviewer=other, admin=admin, samples=s)


@pytest.fixture
def sample(assigned_category):
    return make_sample(assigned_category, "s-001")


@pytest.fixture
def other_sample(unassigned_category):
    return make_sample(unassigned_category, "o-001")
