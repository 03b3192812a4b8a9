"""Template filters for the job pages."""
from django import template

register = template.Library()


@register.filter
def duration(seconds) -> str:
    """Seconds as Chinese text: "8.5 秒", "3 分 20 秒", "1 小时 5 分"."""
    if seconds in (None, ""):
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} 秒" if seconds < 10 else f"{seconds:.0f} 秒"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} 分 {secs} 秒"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} 小时 {minutes} 分"


@register.simple_tag
def job_duration(job) -> str:
    """How long a job ran (or has been running)."""
    from django.utils import timezone

    if not job.started_at:
        return "—"
    end = job.finished_at or timezone.now()
    text = duration((end - job.started_at).total_seconds())
    return text if job.finished_at else f"{text}（运行中）"
