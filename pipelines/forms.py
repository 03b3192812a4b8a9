"""Forms to start the jobs this area owns and to edit prompts. Validation of the job itself
happens in the job kind's clean_params (one place for browser and CLI)."""
from django import forms

from review.models import Category, Dataset, Mode

from .models import PromptTemplate
from .prompts import EDITABLE_KINDS


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


class ClassificationJobForm(EngineParamsForm):
    dataset = forms.ModelChoiceField(label="数据集", queryset=Dataset.objects.all(), empty_label=None)
    mode = forms.TypedChoiceField(label="模式", choices=Mode.choices, coerce=int, initial=Mode.WITH_DEFINITIONS)
    categories = forms.ModelMultipleChoiceField(
        label="类别（不选则全部）", required=False,
        queryset=Category.objects.select_related("dataset").order_by("dataset__name", "position", "name"),
        widget=forms.SelectMultiple(attrs={"size": 10}),
    )
    logprobs = forms.BooleanField(label="请求 token 概率（logprobs，服务器支持时；用于疑似标签错误排序）", required=False)
    field_order = ["dataset", "mode", "categories", "logprobs"]

    def clean(self):
        cleaned = super().clean()
        dataset, categories = cleaned.get("dataset"), cleaned.get("categories") or []
        if dataset and any(c.dataset_id != dataset.pk for c in categories):
            raise forms.ValidationError("所选类别不属于这个数据集")
        return cleaned

    def job_params(self) -> dict:
        return {"dataset": self.cleaned_data["dataset"].pk, "mode": self.cleaned_data["mode"],
                "categories": [c.name for c in self.cleaned_data.get("categories") or []],
                "logprobs": bool(self.cleaned_data.get("logprobs")), **self.engine_params()}


class InfoExtractionJobForm(EngineParamsForm):
    dataset = forms.ModelChoiceField(label="数据集", queryset=Dataset.objects.all(), empty_label=None)
    categories = forms.ModelMultipleChoiceField(
        label="类别（不选则全部）", required=False,
        queryset=Category.objects.select_related("dataset").order_by("dataset__name", "position", "name"),
        widget=forms.SelectMultiple(attrs={"size": 10}),
    )
    overwrite = forms.BooleanField(label="覆盖已有的图片信息", required=False)
    field_order = ["dataset", "categories", "overwrite"]

    def job_params(self) -> dict:
        return {"dataset": self.cleaned_data["dataset"].pk, "overwrite": self.cleaned_data["overwrite"],
                "categories": [c.name for c in self.cleaned_data.get("categories") or []], **self.engine_params()}


class PromptForm(forms.Form):
    text = forms.CharField(label="提示词", widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false"}))
    note = forms.CharField(label="修改说明", required=False, max_length=300)


class RerunWrongForm(forms.Form):
    mode = forms.TypedChoiceField(label="模式", choices=Mode.choices, coerce=int)
    prompt_text = forms.CharField(label="提示词（保存为新版本）", widget=forms.Textarea(attrs={"rows": 18}))


def editable_kind_choices():
    return [(k, PromptTemplate.Kind(k).label) for k in EDITABLE_KINDS]
