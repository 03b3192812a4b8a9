"""The one error a service raises when a rule of the application is broken by a request (not a bug),
its one mapping to HTTP statuses, and the one shape of a version conflict.

Services raise `ApplicationError(message, code=…)`; views answer `http_status(exc)` with the message,
the API the same status with a JSON body, commands a CommandError.
"""
from __future__ import annotations

from typing import Any

# code → HTTP status, for every view and the API.
HTTP_STATUS = {
    "invalid": 400,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
}


class ApplicationError(Exception):
    """A rule of the application was broken by the request (not a bug).

    `code` is one of HTTP_STATUS's keys; `extra` carries typed details for the API (a conflict's
    `current_version`).
    """

    def __init__(self, message: str, *, code: str = "invalid", extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.extra = extra or {}


def http_status(exc: ApplicationError) -> int:
    """The HTTP status a view answers for `exc` (400 for a code it does not know)."""
    return HTTP_STATUS.get(exc.code, 400)


def conflict_error(message: str, *, current_version: int, **details: Any) -> ApplicationError:
    """A save made on a stale version: `message` says who changed it and when, the payload carries the
    version now stored (`current_version`, what a client re-reads and saves again with) and `details`
    (e.g. `changed_by`, `changed_at`)."""
    return ApplicationError(message, code="conflict", extra={"current_version": current_version, **details})


def decision_version_check(row: Any, version: int) -> None:
    """Refuse a decision made on a stale version of a row people decide on (it has `version` and
    `decided_by`): the conflict names who decided in between and the version now stored."""
    if row.version != version:
        who = row.decided_by.get_username() if row.decided_by else "其他人"
        raise conflict_error(f"该样本已被 {who} 修改（版本 {row.version}），请刷新后再决定",
                             current_version=row.version, changed_by=who)
