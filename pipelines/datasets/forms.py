"""Forms of the datasets pages: the feedback list's filters, a feedback decision, the feedback and log
imports, and the dataset builder's sources and options. They only read the request: the services check
the rest (one place for browser and CLI)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings

from core.errors import ApplicationError
from core.forms import seen_version, text_field, valid_data
from pipelines.models import Job, JobKind

from . import formats
from .feedback import DEFAULT_MIN_RATING
from .options import BuildError, BuildOptions, parse_split_ratio
from .selectors import product_sources

DECISION_FILTERS = (("pending", "待审核"), ("accepted", "已接受"), ("edited", "修改后接受"),
                    ("rejected", "已拒绝"), ("all", "全部"))


class FeedbackFilterForm(forms.Form):
    rating = forms.TypedChoiceField(choices=[("", "全部评分")] + [(str(i), f"{i} 分") for i in range(5, 0, -1)],
                                    coerce=int, empty_value=None, required=False, label="评分")
    model = forms.CharField(required=False, label="模型")
    date_from = forms.DateField(required=False, label="起始日期")
    date_to = forms.DateField(required=False, label="截止日期")
    decision = forms.ChoiceField(choices=DECISION_FILTERS, required=False, label="审核状态")


class FeedbackDecideForm(forms.Form):
    """A decision on a feedback sample, the version the reviewer saw, and the list's filters to return to."""

    decision = text_field()
    version = text_field()
    edited_output = text_field()
    filters = text_field()

    def decide_args(self) -> dict[str, Any]:
        """The arguments of `services.feedback_sample_decide` (version -1 if unreadable)."""
        data = valid_data(self)
        version = seen_version(data["version"])
        return {"decision": data["decision"], "version": version, "edited_output": data["edited_output"]}


class FeedbackImportForm(forms.Form):
    """A feedback file (checked and stored by `core.uploads`), the lowest rating kept, an optional model."""

    feedback_file = forms.FileField(required=False, allow_empty_file=True)
    min_rating = text_field()
    model_name = text_field(strip=True)

    def clean_min_rating(self) -> int:
        try:
            return int(self.cleaned_data["min_rating"] or DEFAULT_MIN_RATING)
        except ValueError:
            raise forms.ValidationError("最低评分须是 1–5 的整数") from None

    def import_args(self) -> dict[str, Any]:
        """The arguments of `services.feedback_import_job_start` but the stored file."""
        data = valid_data(self)
        return {"min_rating": data["min_rating"], "model_name": data["model_name"] or None}


def confined_media_dir(relative: str) -> Path:
    """A folder under MEDIA_ROOT named by a relative path; ApplicationError if it escapes or is missing."""
    root = Path(settings.MEDIA_ROOT).resolve()
    folder = (root / (relative or "").strip().lstrip("/")).resolve()
    if not folder.is_relative_to(root):
        raise ApplicationError("目录必须位于 MEDIA_ROOT 之内", code="forbidden")
    if not folder.is_dir():
        raise ApplicationError(f"目录不存在：{relative}", code="not_found")
    return folder


class LogImportForm(forms.Form):
    """A folder of call logs under MEDIA_ROOT, given relative to it."""

    log_dir = text_field()

    def folder(self) -> Path:
        """The folder to import (`confined_media_dir`); ApplicationError saying what is wrong."""
        return confined_media_dir(valid_data(self)["log_dir"])


SOURCE_CHOICES = (("logs", "已导入的调用日志"), ("feedback", "反馈样本"), ("combined", "日志 + 反馈（混合）"))
BUILDER_FORMATS = tuple((name, formats.FORMATS[name].label) for name in formats.SFT_FORMATS
                        if name != "sharegpt_multimodal")


class BuilderForm(forms.Form):
    source = forms.ChoiceField(choices=SOURCE_CHOICES, initial="logs", label="数据源", widget=forms.RadioSelect)
    logs_job = forms.TypedChoiceField(coerce=int, empty_value=None, required=False, label="日志导入任务")
    logs_cap = forms.IntegerField(min_value=0, required=False, label="日志上限")
    logs_weight = forms.FloatField(min_value=0, required=False, label="日志权重")
    feedback_min_rating = forms.IntegerField(min_value=1, max_value=5, initial=4, label="反馈最低评分")
    feedback_model = forms.CharField(required=False, label="反馈模型")
    feedback_only_reviewed = forms.BooleanField(required=False, label="只用已接受的反馈")
    feedback_cap = forms.IntegerField(min_value=0, required=False, label="反馈上限")
    feedback_weight = forms.FloatField(min_value=0, required=False, label="反馈权重")
    format = forms.ChoiceField(choices=BUILDER_FORMATS, initial="alpaca", label="格式")
    container = forms.ChoiceField(choices=(("json", ".json"), ("jsonl", ".jsonl")), initial="json", label="文件类型")
    dedup = forms.BooleanField(required=False, initial=True, label="精确去重")
    dedup_field = forms.ChoiceField(choices=(("prompt", "prompt（指令 + 输入）"), ("instruction", "instruction（仅指令）"), ("response", "response")), initial="prompt",
                                    label="去重字段")
    near_dup = forms.BooleanField(required=False, label="近似去重（MinHash）")
    near_dup_threshold = forms.FloatField(min_value=0.3, max_value=1.0, initial=0.8, label="近似阈值")
    min_length = forms.IntegerField(min_value=0, required=False, label="回答最小长度")
    max_length = forms.IntegerField(min_value=0, required=False, label="回答最大长度")
    limit = forms.IntegerField(min_value=0, required=False, label="数量上限")
    shuffle = forms.BooleanField(required=False, initial=True, label="打乱")
    seed = forms.IntegerField(initial=42, label="随机种子")
    split_ratio = forms.CharField(required=False, initial="", label="拆分比例",
                                  help_text="如 0.8,0.1,0.1；留空不拆分")
    name = forms.SlugField(required=False, initial="dataset", label="数据集名称")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        jobs = Job.objects.filter(kind=JobKind.LOG_EXTRACTION).order_by("-created_at")[:50]
        self.fields["logs_job"].choices = [("", "全部已导入日志")] + [
            (str(job.pk), f"#{job.pk} {Path(job.params.get('log_dir', '')).name} · {job.report.get('kept', 0)} 条")
            for job in jobs
        ]

    def clean_split_ratio(self):
        try:
            return parse_split_ratio(self.cleaned_data.get("split_ratio"))
        except BuildError as exc:
            raise forms.ValidationError(str(exc)) from None

    def sources(self):
        data = self.cleaned_data
        source = data["source"]
        return product_sources(
            logs=source in {"logs", "combined"}, logs_job_id=data.get("logs_job"),
            feedback=source in {"feedback", "combined"}, feedback_min_rating=data["feedback_min_rating"],
            feedback_model=data.get("feedback_model", "").strip(),
            feedback_only_reviewed=data.get("feedback_only_reviewed", False),
            caps={"logs": data.get("logs_cap"), "feedback": data.get("feedback_cap")},
            weights={"logs": data.get("logs_weight"), "feedback": data.get("feedback_weight")},
        )

    def options(self) -> BuildOptions:
        data = self.cleaned_data
        return BuildOptions(
            format=data["format"], container=data["container"], dedup=data["dedup"], dedup_field=data["dedup_field"],
            near_dup=data["near_dup"], near_dup_threshold=data["near_dup_threshold"],
            min_length=data.get("min_length"), max_length=data.get("max_length"), limit=data.get("limit"),
            shuffle=data["shuffle"], seed=data["seed"], split_ratio=data.get("split_ratio"),
            dataset_name=data.get("name") or "dataset",
        )
