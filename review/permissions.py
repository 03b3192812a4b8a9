"""Who may see and change what. Every view and API endpoint asks these functions.

Rules: every signed-in user may view every class; a reviewer may change only the samples of the
categories assigned to them; staff may change everything and manage assignments.
"""
from django.contrib.auth.models import AbstractBaseUser

from .models import Assignment, Category


def can_change_category(user: AbstractBaseUser, category: Category | int) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff:
        return True
    category_id = category if isinstance(category, int) else category.pk
    return Assignment.objects.filter(reviewer=user, category_id=category_id).exists()


def changeable_category_ids(user: AbstractBaseUser) -> set[int] | None:
    """Ids of the categories the user may change; None means all (staff)."""
    if user.is_staff:
        return None
    return set(Assignment.objects.filter(reviewer=user).values_list("category_id", flat=True))
