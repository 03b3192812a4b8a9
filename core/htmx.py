"""The house htmx habit in one place: an htmx request gets the swapped partial, except a history restore
(the browser lost its cached page and asks for the whole page again)."""
from __future__ import annotations


def htmx_partial(request) -> bool:
    """htmx wants just the swapped region (not for history restores, which need the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request
