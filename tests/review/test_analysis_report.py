"""`manage.py analysis_report`: 分类分析.md for one reviewer's classes, `####` class headings."""
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


pytestmark = pytest.mark.django_db


def test_analysis_report_for_chosen_classes_uses_level_four_class_headings(scene, tmp_path):  # noqa: F811
    out = tmp_path / "report" / "分类分析.md"
    call_command("analysis_report", "--dataset", "scenes", "--classes", "商品分类选项", "退货", "--output", str(out))
    text = out.read_text(encoding="utf-8")
    assert "#### 商品分类选项\n" in text and "#### 退货退款\n" in text and "#### 换货" not in text
    assert "定义：图片中显示商品颜色、规格选项" in text and "训练集中共有4个样本" in text
    assert "id: a2，推理结果：\"换货\"" in text  # mode 2's error listed with its prediction
    assert [p.name for p in out.parent.iterdir()] == ["分类分析.md"]  # no temporary file left behind


def test_analysis_report_for_a_reviewer_and_on_standard_output(scene, capsys):  # noqa: F811
    call_command("analysis_report", "--dataset", "scenes", "--reviewer", "reviewer2")
    text = capsys.readouterr().out
    assert text.startswith("# 分类分析 — scenes") and "#### 换货\n" in text and "#### 商品分类选项" not in text


def test_analysis_report_names_unknown_classes_with_the_closest(scene):  # noqa: F811
    with pytest.raises(CommandError) as excinfo:
        call_command("analysis_report", "--dataset", "scenes", "--classes", "退货退欸")
    assert "退货退欸" in str(excinfo.value) and "退货退款" in str(excinfo.value)
    with pytest.raises(CommandError):
        call_command("analysis_report", "--dataset", "nope")
