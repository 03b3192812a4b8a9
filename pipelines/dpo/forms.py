"""Forms of the DPO pages. They only read the request: the job parameters are validated by
`params.clean_params` and the review rules by `services.pair_review` (one place for browser and CLI)."""
from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from core.forms import seen_version, text_field, valid_data
from core.uploads import upload_store

from .params import PREVIEW_DEFAULT

# Strategy fields passed on as typed (not stripped: a template's spaces are part of it).
STRATEGY_FIELDS = ("base_url", "model", "template", "system", "mode", "temperature", "top_p", "n", "max_tokens", "keep")
# The preview shows at most this many prompts.
PREVIEW_MAX = 20


class StartForm(forms.Form):
    """The start form (source, reject strategy, limit, preview size) as job parameters."""

    source = text_field()
    source_job_id = text_field(strip=True)
    source_model_name = text_field(strip=True)
    source_dataset = text_field(strip=True)
    source_path = text_field()
    file = forms.FileField(required=False, allow_empty_file=True)
    strategy = text_field()
    base_url = text_field()
    model = text_field()
    template = text_field()
    system = text_field()
    mode = text_field()
    temperature = text_field()
    top_p = text_field()
    n = text_field()
    max_tokens = text_field()
    keep = text_field()
    limit = text_field(strip=True)
    preview_n = text_field()

    def params(self) -> dict[str, Any]:
        """The job parameters; an uploaded file is stored under MEDIA_ROOT/dpo/imports (size-checked)."""
        data = valid_data(self)
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

    issue = text_field()
    decision = text_field()

    def filters(self) -> dict[str, str]:
        data = self.cleaned_data if self.is_valid() else {}
        return {"issue": data.get("issue", ""), "decision": data.get("decision", "")}


class PairReviewForm(forms.Form):
    """A reviewer's action on a pair, the version they saw, the edited texts and the list being reviewed."""

    action = text_field()
    version = text_field()
    chosen = text_field()
    rejected = text_field()
    issue = text_field()
    decision_filter = text_field()

    def filters(self) -> dict[str, str]:
        """The filters of the list being reviewed (kept when moving to the next pair)."""
        data = self.cleaned_data if self.is_valid() else {}
        return {"issue": data.get("issue", ""), "decision": data.get("decision_filter", "")}

    def decision(self) -> dict[str, Any]:
        """The arguments of `services.pair_review`: action, version (-1 if unreadable), edited texts."""
        data = valid_data(self)
        # Ctrl+Enter in a textarea submits without a button: that is saving the edit.
        action = data["action"] or "edit"
        version = seen_version(data["version"])
        # A side the request did not send stays as it is.
        texts = {name: data[name] if action == "edit" and name in self.data else None for name in ("chosen", "rejected")}
        return {"action": action, "version": version, **texts}


class ExportForm(forms.Form):
    """The export button: a preference format, and whether flagged pairs nobody reviewed go too."""

    format = text_field()
    include_flagged = text_field()

    def options(self) -> dict[str, Any]:
        data = valid_data(self)
        return {"fmt": data["format"], "include_flagged": data["include_flagged"] == "1"}
