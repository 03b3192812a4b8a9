"""Forms of the generation pages. They only read the request: the run's parameters are validated by
`params.clean_params`, the rest by the services (one place for browser and CLI)."""
from __future__ import annotations

from typing import Any

from django import forms

from core.forms import seen_version, text_field, valid_data

# The start form's fields, passed on when filled in (collection always: its absence is the error).
START_FIELDS = ("collection", "sample", "multiple_choice_ratio", "pass_threshold", "temperature", "seed",
                "judge_model", "judge_temperature")
# What a re-run of failed items may change.
RERUN_FIELDS = ("temperature", "multiple_choice_ratio", "pass_threshold")


class StartForm(forms.Form):
    """Start a run over a source collection."""

    collection = text_field(strip=True)
    sample = text_field(strip=True)
    multiple_choice_ratio = text_field(strip=True)
    pass_threshold = text_field(strip=True)
    temperature = text_field(strip=True)
    seed = text_field(strip=True)
    judge_model = text_field(strip=True)
    judge_temperature = text_field(strip=True)

    def params(self) -> dict[str, str]:
        data = valid_data(self)
        return {k: data[k] for k in START_FIELDS if data[k] != "" or k == "collection"}


class ImportSourcesForm(forms.Form):
    """Import source items from an uploaded JSON/JSONL file into a collection."""

    file = forms.FileField(required=False, allow_empty_file=True)
    collection = text_field(strip=True)
    sample = text_field(strip=True)


# The review queue's status filter; anything else (or nothing) means "pending".
DECISION_FILTERS = (("pending", "待审核"), ("decided", "已决定"), ("all", "全部"))


class QueueForm(forms.Form):
    """The failed-example queue a reviewer is in: the failure reason and the review status."""

    reason = text_field()
    status = text_field()

    def queue(self) -> tuple[str, str]:
        """(reason, status); an unreadable reason is none, an unknown status is "pending"."""
        self.is_valid()
        status = self.cleaned_data.get("status", "")
        return self.cleaned_data.get("reason", ""), status if status in dict(DECISION_FILTERS) else "pending"


class DecideForm(QueueForm):
    """A decision on a failed example, the version the reviewer saw, and the queue they were in."""

    decision = text_field()
    version = text_field()
    edited_response = text_field()
    page = text_field()

    def decide_args(self) -> dict[str, Any]:
        """The arguments of `services.generated_example_decide` (version -1 if unreadable)."""
        data = valid_data(self)
        version = seen_version(data["version"])
        return {"decision": data["decision"], "version": version, "edited_response": data["edited_response"]}


class RerunForm(forms.Form):
    """The settings a re-run of the failed items changes (blank = unchanged)."""

    temperature = text_field(strip=True)
    multiple_choice_ratio = text_field(strip=True)
    pass_threshold = text_field(strip=True)

    def changes(self) -> dict[str, str]:
        data = valid_data(self)
        return {k: data[k] for k in RERUN_FIELDS}
