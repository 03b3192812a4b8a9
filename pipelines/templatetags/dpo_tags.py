"""Template filters for the DPO pages."""
from django import template

register = template.Library()


@register.filter
def pair_status(decision: str) -> str:
    """A pair's review status in the DPO pages' words: 待审核 / 已接受 / 已修改 / 已丢弃."""
    from pipelines.dpo.selectors import DECISION_LABELS

    return DECISION_LABELS.get(decision, decision)
