"""Forms of the datasets pages: the feedback list's filters and the dataset builder's sources and
options."""
from __future__ import annotations

from pathlib import Path

from django import forms

from pipelines.models import Job, JobKind

from . import formats
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
