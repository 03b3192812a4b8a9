"""Template tags of the review pages."""
from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()


@register.simple_tag
def verdict(correct: bool | None, name: str | None) -> str:
    """A prediction with its right/wrong mark: `correct` True/False/None (no class parsed), `name`
    None when the mode has no output at all. A tag, not an include: the queue shows two per row,
    and an include per cell was a fifth of the page's time."""
    if correct is None:
        if name is None:
            return mark_safe('<span class="badge muted" title="没有这个模式的输出">无输出</span>')  # constant text
        return format_html('<span class="badge" title="无法从输出中解析出类别">{}</span>', name or "无法解析")
    if correct:
        return format_html('<span class="badge ok" title="与标签一致">✓ {}</span>', name)
    return format_html('<span class="badge bad" title="与标签不一致">✗ {}</span>', name)
