"""Writes of assignments: who reviews which class (staff only, or an operator at the command line)."""
from collections.abc import Iterable, Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from core.errors import ApplicationError
from review.models import Assignment, Category, Dataset


@transaction.atomic
def assignment_set(
    *, category: Category, reviewers: Iterable[AbstractBaseUser], assigned_by: AbstractBaseUser
) -> list[Assignment]:
    """Make `reviewers` exactly the set of people assigned to `category` (staff only)."""
    if not (assigned_by.is_authenticated and assigned_by.is_staff):
        raise ApplicationError("只有管理员可以分配类别。", code="forbidden")
    wanted = {user.pk: user for user in reviewers}
    Assignment.objects.filter(category=category).exclude(reviewer_id__in=wanted).delete()
    existing = set(Assignment.objects.filter(category=category).values_list("reviewer_id", flat=True))
    Assignment.objects.bulk_create(
        [Assignment(category=category, reviewer=user, assigned_by=assigned_by) for pk, user in wanted.items()
         if pk not in existing]
    )
    return list(Assignment.objects.filter(category=category).select_related("reviewer"))


@transaction.atomic
def assignments_add(
    *, reviewer: AbstractBaseUser, categories: Iterable[Category], assigned_by: AbstractBaseUser | None
) -> int:
    """Give `reviewer` the `categories` (keeping other assignments); returns how many were new.

    `assigned_by` None means an operator at the command line; a user must be staff.
    """
    if assigned_by is not None and not (assigned_by.is_authenticated and assigned_by.is_staff):
        raise ApplicationError("只有管理员可以分配类别。", code="forbidden")
    existing = set(Assignment.objects.filter(reviewer=reviewer).values_list("category_id", flat=True))
    new = [Assignment(reviewer=reviewer, category=c, assigned_by=assigned_by) for c in categories if c.pk not in existing]
    Assignment.objects.bulk_create(new)
    return len(new)


@transaction.atomic
def assignments_set_for_dataset(
    *,
    dataset: Dataset,
    reviewer_ids_by_category: Mapping[int, Iterable[int]],
    assigned_by: AbstractBaseUser,
) -> int:
    """Replace the assignments of every category of `dataset` at once; returns how many exist after."""
    from django.contrib.auth import get_user_model

    if not (assigned_by.is_authenticated and assigned_by.is_staff):
        raise ApplicationError("只有管理员可以分配类别。", code="forbidden")
    users = {u.pk: u for u in get_user_model().objects.filter(is_active=True)}
    for category in dataset.categories.all():
        ids = reviewer_ids_by_category.get(category.pk, ())
        assignment_set(category=category, reviewers=[users[i] for i in ids if i in users], assigned_by=assigned_by)
    return Assignment.objects.filter(category__dataset=dataset).count()
