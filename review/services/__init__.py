"""Every write of the review application (see each module); the names other modules use."""
from .reviews import (
    ClassificationRecord,
    ModelOutput,
    RecordsSaveResult,
    assignment_set,
    assignments_add,
    assignments_set_for_dataset,
    classification_records_save,
    correction_check,
    reasoning_pending_decide,
    reasonings_store,
    review_keep,
    review_restore,
    review_save,
    reviewer_text,
)

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
