"""Form parts every job start form shares (the provider overrides), the prompt editor's form and the
job pages' filters. Validation of the job itself happens in the job kind's clean_params (one place for
browser and CLI)."""
from django import forms

from core.forms import read_data, text_field


class EngineParamsForm(forms.Form):
    """Per-job provider overrides shared by every job form."""

    model = forms.CharField(label="模型", required=False, max_length=200,
                            help_text="留空使用默认视觉模型")
    concurrency = forms.IntegerField(label="并发数", required=False, min_value=1, max_value=128)
    requests_per_minute = forms.IntegerField(label="每分钟请求上限", required=False, min_value=0,
                                             help_text="0 表示不限")
    temperature = forms.FloatField(label="temperature", required=False, min_value=0, max_value=2)
    max_tokens = forms.IntegerField(label="max_tokens", required=False, min_value=1, max_value=32768)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from django.conf import settings

        # Show the provider defaults a blank field falls back to.
        self.fields["model"].widget.attrs["placeholder"] = settings.LLM_VISION_MODEL
        self.fields["concurrency"].widget.attrs["placeholder"] = str(settings.LLM_CONCURRENCY)
        self.fields["requests_per_minute"].widget.attrs["placeholder"] = str(settings.LLM_REQUESTS_PER_MINUTE)

    def engine_params(self) -> dict:
        names = ("model", "concurrency", "requests_per_minute", "temperature", "max_tokens")
        return {n: self.cleaned_data[n] for n in names if self.cleaned_data.get(n) not in (None, "")}


class PromptForm(forms.Form):
    text = forms.CharField(label="提示词", widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false"}))
    note = forms.CharField(label="修改说明", required=False, max_length=300)


class JobFilterForm(forms.Form):
    """The job list's filters as sent: a kind and a status (one that is not a kind / status: all)."""

    kind = text_field()
    status = text_field()

    def values(self) -> tuple[str, str]:
        data = read_data(self)
        return data.get("kind", ""), data.get("status", "")


class ItemFilterForm(forms.Form):
    """A job's item list filter as sent: an item status (one that is not a status: all)."""

    status = text_field()

    def value(self) -> str:
        return read_data(self).get("status", "")


class NewJobForm(forms.Form):
    """`/jobs/new/?kind=…`: which start page; the rest of the query goes on to it."""

    kind = text_field()

    def value(self) -> str:
        return read_data(self).get("kind", "")
