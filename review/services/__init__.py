"""Every write of the review application, one module per entity (reviews, assignments, reasonings,
imported records). Keyword-only, transactional, raising ApplicationError.

Codes raised (views map them to HTTP): "forbidden" → 403, "conflict" → 409, "invalid" → 400.

Stable interface used by other areas (the REST API calls `review_save` with the same arguments):

    review_save(*, sample, user, cause, corrected_output, label_error, suggested_label, note, version)
    review_restore(*, edit, user)
    assignment_set(*, category, reviewers, assigned_by)
    classification_records_save(*, dataset, records, categories=None)
"""
from .assignments import assignment_set, assignments_add, assignments_set_for_dataset
from .reasonings import ModelOutput, reasoning_pending_decide, reasonings_store
from .records import ClassificationRecord, RecordsSaveResult, classification_records_save
from .reviews import correction_check, review_keep, review_restore, review_save, reviewer_text

__all__ = [
    "ClassificationRecord",
    "ModelOutput",
    "RecordsSaveResult",
    "assignment_set",
    "assignments_add",
    "assignments_set_for_dataset",
    "classification_records_save",
    "correction_check",
    "reasoning_pending_decide",
    "reasonings_store",
    "review_keep",
    "review_restore",
    "review_save",
    "reviewer_text",
]
