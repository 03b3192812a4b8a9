"""Forms of the DPO pages. They only read the request: the job parameters are validated by
`params.clean_params` and the review rules by `services.pair_review` (one place for browser and CLI)."""
from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from core.errors import ApplicationError
from core.uploads import upload_store

from .params import PREVIEW_DEFAULT

# Strategy fields passed on as typed (not stripped: a template's spaces are part of it).
STRATEGY_FIELDS = ("base_url", "model", "template", "system", "mode", "temperature", "top_p", "n", "max_tokens", "keep")
# The preview shows at most this many prompts.
PREVIEW_MAX = 20


def _text(*, strip: bool = False) -> forms.CharField:
    return forms.CharField(required=False, strip=strip)


def _first_error(form: forms.Form) -> str:
    return next(iter(form.errors.values()))[0]


class StartForm(forms.Form):
    """The start form (source, reject strategy, limit, preview size) as job parameters."""

    source = _text()
    source_job_id = _text(strip=True)
    source_model_name = _text(strip=True)
    source_dataset = _text(strip=True)
    source_path = _text()
    file = forms.FileField(required=False, allow_empty_file=True)
    strategy = _text()
    base_url = _text()
    model = _text()
    template = _text()
    system = _text()
    mode = _text()
    temperature = _text()
    top_p = _text()
    n = _text()
    max_tokens = _text()
    keep = _text()
    limit = _text(strip=True)
    preview_n = _text()

    def params(self) -> dict[str, Any]:
        """The job parameters; an uploaded file is stored under MEDIA_ROOT/dpo/imports (size-checked)."""
        if not self.is_valid():
            raise ApplicationError(_first_error(self))
        data = self.cleaned_data
        source: dict[str, Any] = {"name": data["source"]}
        for name in ("job_id", "model_name", "dataset"):
            if data[f"source_{name}"]:
                source[name] = data[f"source_{name}"]
        if data["file"] is not None:
            source["path"] = upload_store(data["file"], folder="dpo/imports").relative_to(settings.MEDIA_ROOT).as_posix()
        elif data["source_path"]:
            source["path"] = data["source_path"]
        strategy = {"name": data["strategy"]}
        for name in STRATEGY_FIELDS:
            if data[name] != "":
                strategy[name] = data[name]
        params: dict[str, Any] = {"source": source, "strategy": strategy}
        if data["limit"]:
            params["limit"] = data["limit"]
        return params

    def preview_count(self) -> int:
        """How many prompts to preview (1 to PREVIEW_MAX); ValueError if it is not a number."""
        return max(1, min(int(self.cleaned_data["preview_n"] or PREVIEW_DEFAULT), PREVIEW_MAX))


class PairFilterForm(forms.Form):
    """The pair list's filters: an issue and a review decision (blank = any)."""

    issue = _text()
    decision = _text()

    def filters(self) -> dict[str, str]:
        data = self.cleaned_data if self.is_valid() else {}
        return {"issue": data.get("issue", ""), "decision": data.get("decision", "")}


class PairReviewForm(forms.Form):
    """A reviewer's action on a pair, the version they saw, the edited texts and the list being reviewed."""

    action = _text()
    version = _text()
    chosen = _text()
    rejected = _text()
    issue = _text()
    decision_filter = _text()

    def filters(self) -> dict[str, str]:
        """The filters of the list being reviewed (kept when moving to the next pair)."""
        data = self.cleaned_data if self.is_valid() else {}
        return {"issue": data.get("issue", ""), "decision": data.get("decision_filter", "")}

    def decision(self) -> dict[str, Any]:
        """The arguments of `services.pair_review`: action, version (-1 if unreadable), edited texts."""
        if not self.is_valid():
            raise ApplicationError(_first_error(self))
        data = self.cleaned_data
        # Ctrl+Enter in a textarea submits without a button: that is saving the edit.
        action = data["action"] or "edit"
        try:
            version = int(data["version"])
        except ValueError:
            version = -1
        # A side the request did not send stays as it is.
        texts = {name: data[name] if action == "edit" and name in self.data else None for name in ("chosen", "rejected")}
        return {"action": action, "version": version, **texts}


class ExportForm(forms.Form):
    """The export button: a preference format, and whether flagged pairs nobody reviewed go too."""

    format = _text()
    include_flagged = _text()

    def options(self) -> dict[str, Any]:
        if not self.is_valid():
            raise ApplicationError(_first_error(self))
        return {"fmt": self.cleaned_data["format"], "include_flagged": self.cleaned_data["include_flagged"] == "1"}
