"""What every area's forms share when they read a request as sent: a text field that may be blank,
the form's data (or its first error as an ApplicationError), and the version a reviewer saw."""
from __future__ import annotations

from typing import Any

from django import forms

from .errors import ApplicationError


def text_field(*, strip: bool = False) -> forms.CharField:
    """A field read as sent, blank allowed; `strip` trims the spaces around the value."""
    return forms.CharField(required=False, strip=strip)


def first_error(form: forms.Form) -> str:
    """The form's first error message."""
    return next(iter(form.errors.values()))[0]


def valid_data(form: forms.Form) -> dict[str, Any]:
    """The form's cleaned data; its first error as an ApplicationError (code "invalid") if it has one."""
    if not form.is_valid():
        raise ApplicationError(first_error(form))
    return form.cleaned_data


def read_data(form: forms.Form) -> dict[str, Any]:
    """The cleaned data of a form none of whose fields can be invalid (an unreadable value is absent)."""
    form.is_valid()
    return form.cleaned_data


def seen_version(value: str) -> int:
    """The version a reviewer saw, as posted; -1 (never a stored version) if it is not a number."""
    try:
        return int(value)
    except ValueError:
        return -1
