"""The team's revised class definitions, kept beside the official ones and versioned.

When mode-2 errors show that official definitions overlap, an admin writes a revised definition;
every save is a new `DefinitionRevision`, and `Category.revised_definition` holds the latest text.
"""
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max

from core.errors import ApplicationError
from .models import Category, DefinitionRevision

MAX_DEFINITION_LENGTH = 2000


@transaction.atomic
def definition_revise(*, category: Category, text: str, author: AbstractBaseUser) -> DefinitionRevision:
    """Save `text` as the category's revised definition, as a new version.

    Only staff may revise definitions. An empty text is a version too: it withdraws the revision,
    so the official definition is used again. Saving the current text again is refused.
    """
    if not (author.is_authenticated and author.is_active and author.is_staff):
        raise ApplicationError("只有管理员可以修改类别定义。", code="forbidden")
    # Trailing spaces and Windows line ends are noise, not a new wording.
    text = "\n".join(line.rstrip() for line in (text or "").splitlines()).strip()
    if len(text) > MAX_DEFINITION_LENGTH:
        raise ApplicationError(f"定义过长（最多 {MAX_DEFINITION_LENGTH} 字）。", code="too_long")
    # Lock the category so two admins saving at once get consecutive versions, not a clash.
    locked = Category.objects.select_for_update().get(pk=category.pk)
    if text == locked.revised_definition:
        raise ApplicationError("修订定义没有变化。", code="unchanged")
    latest = locked.definition_revisions.aggregate(latest=Max("version"))["latest"] or 0
    revision = DefinitionRevision.objects.create(category=locked, version=latest + 1, text=text, author=author)
    locked.revised_definition = text
    locked.save(update_fields=["revised_definition"])
    category.revised_definition = text
    return revision


def definition_history(*, category: Category) -> list[DefinitionRevision]:
    """All saved revisions of the category, newest first, with their authors."""
    return list(category.definition_revisions.select_related("author").order_by("-version"))
