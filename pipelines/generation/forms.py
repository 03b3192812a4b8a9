"""Forms of the generation pages. They only read the request: the run's parameters are validated by
`params.clean_params`, the rest by the services (one place for browser and CLI)."""
from __future__ import annotations

from typing import Any

from django import forms

from core.errors import ApplicationError

# The start form's fields, passed on when filled in (collection always: its absence is the error).
START_FIELDS = ("collection", "sample", "multiple_choice_ratio", "pass_threshold", "temperature", "seed",
                "judge_model", "judge_temperature")
# What a re-run of failed items may change.
RERUN_FIELDS = ("temperature", "multiple_choice_ratio", "pass_threshold")


def _text(*, strip: bool = True) -> forms.CharField:
    return forms.CharField(required=False, strip=strip)


def _valid(form: forms.Form) -> dict[str, Any]:
    if not form.is_valid():
        raise ApplicationError(next(iter(form.errors.values()))[0])
    return form.cleaned_data


class StartForm(forms.Form):
    """Start a run over a source collection."""

    collection = _text()
    sample = _text()
    multiple_choice_ratio = _text()
    pass_threshold = _text()
    temperature = _text()
    seed = _text()
    judge_model = _text()
    judge_temperature = _text()

    def params(self) -> dict[str, str]:
        data = _valid(self)
        return {k: data[k] for k in START_FIELDS if data[k] != "" or k == "collection"}


class ImportSourcesForm(forms.Form):
    """Import source items from an uploaded JSON/JSONL file into a collection."""

    file = forms.FileField(required=False, allow_empty_file=True)
    collection = _text()
    sample = _text()


# The review queue's status filter; anything else (or nothing) means "pending".
DECISION_FILTERS = (("pending", "待审核"), ("decided", "已决定"), ("all", "全部"))


class QueueForm(forms.Form):
    """The failed-example queue a reviewer is in: the failure reason and the review status."""

    reason = _text(strip=False)
    status = _text(strip=False)

    def queue(self) -> tuple[str, str]:
        """(reason, status); an unreadable reason is none, an unknown status is "pending"."""
        self.is_valid()
        status = self.cleaned_data.get("status", "")
        return self.cleaned_data.get("reason", ""), status if status in dict(DECISION_FILTERS) else "pending"


class DecideForm(QueueForm):
    """A decision on a failed example, the version the reviewer saw, and the queue they were in."""

    decision = _text(strip=False)
    version = _text(strip=False)
    edited_response = _text(strip=False)
    page = _text(strip=False)

    def decide_args(self) -> dict[str, Any]:
        """The arguments of `services.generated_example_decide` (version -1 if unreadable)."""
        data = _valid(self)
        try:
            version = int(data["version"])
        except ValueError:
            version = -1
        return {"decision": data["decision"], "version": version, "edited_response": data["edited_response"]}


class RerunForm(forms.Form):
    """The settings a re-run of the failed items changes (blank = unchanged)."""

    temperature = _text()
    multiple_choice_ratio = _text()
    pass_threshold = _text()

    def changes(self) -> dict[str, str]:
        data = _valid(self)
        return {k: data[k] for k in RERUN_FIELDS}
