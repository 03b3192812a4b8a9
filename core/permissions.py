"""Who may do what, where it is the same rule everywhere: staff-only views."""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

STAFF_ONLY_MESSAGE = "只有管理员可以执行此操作。"


def require_staff(user) -> None:
    """Raise PermissionDenied (403) unless `user` is staff."""
    if not user.is_staff:
        raise PermissionDenied(STAFF_ONLY_MESSAGE)


def staff_required(view):
    """A view for signed-in staff only: anonymous users go to the login page, everyone else gets 403."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        require_staff(request.user)
        return view(request, *args, **kwargs)

    return wrapper
