"""Revised class definitions: versioned, kept beside the official one, staff only."""
import pytest

from review.definitions import definition_history, definition_revise
from core.errors import ApplicationError
from review.models import Category, DefinitionRevision


def test_each_save_is_a_new_version_and_the_official_definition_stays(scene):
    definition_revise(category=scene.a, text="  只含颜色/规格选择弹窗 \r\n不含详情页 ", author=scene.admin)
    second = definition_revise(category=scene.a, text="只含颜色/规格选择弹窗", author=scene.admin)
    assert second.version == 2
    category = Category.objects.get(pk=scene.a.pk)
    assert category.revised_definition == "只含颜色/规格选择弹窗"
    assert category.definition == "图片中显示商品颜色、规格选项"
    assert category.effective_definition == "只含颜色/规格选择弹窗"
    assert [(r.version, r.text, r.author.username) for r in definition_history(category=category)] == [
        (2, "只含颜色/规格选择弹窗", "admin"), (1, "只含颜色/规格选择弹窗\n不含详情页", "admin")]


def test_empty_text_withdraws_the_revision_as_a_version(scene):
    definition_revise(category=scene.a, text="修订", author=scene.admin)
    definition_revise(category=scene.a, text="", author=scene.admin)
    category = Category.objects.get(pk=scene.a.pk)
    assert category.revised_definition == "" and category.effective_definition == category.definition
    assert DefinitionRevision.objects.filter(category=category).count() == 2


@pytest.mark.parametrize("text, code", [("修订", "forbidden"), ("x" * 2001, "too_long")])
def test_refused_changes_leave_no_trace(scene, text, code):
    author = scene.reviewer if code == "forbidden" else scene.admin
    with pytest.raises(ApplicationError) as exc:
        definition_revise(category=scene.a, text=text, author=author)
    assert exc.value.code == code
    assert not DefinitionRevision.objects.exists()
    assert Category.objects.get(pk=scene.a.pk).revised_definition == ""


def test_unchanged_text_is_refused(scene):
    definition_revise(category=scene.a, text="修订", author=scene.admin)
    with pytest.raises(ApplicationError) as exc:
        definition_revise(category=scene.a, text=" 修订 ", author=scene.admin)
    assert exc.value.code == "unchanged"
    assert DefinitionRevision.objects.count() == 1
