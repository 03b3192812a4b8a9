"""Drafted corrections on the sample page: which draft is shown, its live check and diff, discarding.

A draft (review/jobs/correction_drafts.py) is shown for the mode-3 version it was written for, beside
the model's output with a character diff. It is offered for one-key acceptance only while it passes
`review.rules.check_correction` as the export would check it now (the limit and the label are read
live); otherwise it is shown as failed, with the reasons. Accepting puts it into the edit box; only
a saved review (`review_save(correction_draft=…)`) makes it a correction.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Case, Q, Value, When
from django.utils import timezone

from . import rules
from core.errors import ApplicationError
from .models import CorrectionDraft, Reasoning, Review, Sample
from .permissions import can_change_category
from .selectors import text_diff
from .services import correction_check


@dataclass
class DraftView:
    draft: CorrectionDraft
    check: rules.CorrectionCheck
    # ("equal" | "delete" | "insert", text) pieces from the model's mode-3 output to the draft
    segments: list[tuple[str, str]]
    # The review's correction started from this draft (it is in the edit box already).
    in_use: bool = False

    @property
    def offerable(self) -> bool:
        """One key may put it into the edit box: it passes the checks and is not in use yet."""
        return self.check.ok and not self.in_use


def draft_for(*, sample: Sample, mode3: Reasoning | None, review: Review | None) -> DraftView | None:
    """The draft the sample page shows: the one the review's correction came from, else the newest
    draft waiting for the current mode-3 output (None when there is neither)."""
    shown = Q(pk__in=[])
    if mode3 is not None:
        shown |= Q(status=CorrectionDraft.Status.OFFERED, mode3_version=mode3.version)
    if review is not None and review.pk:
        shown |= Q(review=review, status=CorrectionDraft.Status.ACCEPTED)
    in_use_first = Case(When(status=CorrectionDraft.Status.ACCEPTED, then=Value(0)), default=Value(1))
    draft = CorrectionDraft.objects.filter(sample=sample).filter(shown).order_by(in_use_first, "-created_at", "-pk").first()
    if draft is None:
        return None
    in_use = draft.status == CorrectionDraft.Status.ACCEPTED
    check = correction_check(sample=sample, text=draft.text)
    return DraftView(draft, check, text_diff(mode3.output if mode3 else "", draft.text), in_use)


@transaction.atomic
def draft_discard(*, draft: CorrectionDraft, user) -> CorrectionDraft:
    """The reviewer does not want this draft: it is no longer offered (kept, marked discarded)."""
    draft = CorrectionDraft.objects.select_for_update().select_related("sample").get(pk=draft.pk)
    if not can_change_category(user, draft.sample.label_id):
        raise ApplicationError("你没有被分配这个类别，只能查看，不能修改。", code="forbidden")
    if draft.status != CorrectionDraft.Status.OFFERED:
        raise ApplicationError(f"这份草稿{draft.get_status_display()}，不能再丢弃。", code="conflict")
    draft.status = CorrectionDraft.Status.DISCARDED
    draft.decided_by = user
    draft.decided_at = timezone.now()
    draft.save(update_fields=["status", "decided_by", "decided_at"])
    return draft
