"""Times for people: one timezone (settings.TIME_ZONE, default Asia/Shanghai) in file names, reports
and pages. Django's templates already show TIME_ZONE; code that formats a time itself (a file name,
a directory name) goes through here instead of formatting `timezone.now()`, which is UTC."""
from datetime import datetime

from django.utils import timezone


def local_now() -> datetime:
    """Now, as an aware datetime in TIME_ZONE."""
    return timezone.localtime(timezone.now())


def local_timestamp(moment: datetime | None = None, fmt: str = "%Y%m%d-%H%M%S") -> str:
    """`moment` (default now) in TIME_ZONE, formatted for a file or directory name."""
    return timezone.localtime(moment or timezone.now()).strftime(fmt)


def timezone_label() -> str:
    """The timezone the pages show times in, e.g. "Asia/Shanghai (UTC+08:00)"."""
    now = local_now()
    offset = now.strftime("%z")
    return f"{timezone.get_current_timezone_name()} (UTC{offset[:3]}:{offset[3:]})"


def timezone_context(request) -> dict:
    """Context processor: `time_zone_label` for the page footer."""
    return {"time_zone_label": timezone_label()}
