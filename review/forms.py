"""Forms that validate what reviewers post; services do the writing."""
from django import forms

from .models import Category, Cause, Dataset

ACTION_SAVE, ACTION_KEEP = "save", "keep"


class ReviewForm(forms.Form):
    """The sample page's review form. `action=keep` means "correct, keep the model's output"."""

    cause = forms.ChoiceField(choices=Cause.choices, required=False)
    corrected_output = forms.CharField(required=False, strip=False, max_length=20_000)
    label_error = forms.BooleanField(required=False)
    suggested_label = forms.ModelChoiceField(queryset=Category.objects.none(), required=False)
    note = forms.CharField(required=False, max_length=5_000)
    version = forms.IntegerField(min_value=0)
    action = forms.ChoiceField(choices=[(ACTION_SAVE, "保存"), (ACTION_KEEP, "正确，保留")], required=False)

    def __init__(self, *args, dataset: Dataset, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["suggested_label"].queryset = Category.objects.filter(dataset=dataset)

    def clean(self):
        data = super().clean()
        if data.get("action") == ACTION_KEEP:
            data.update(cause=Cause.NONE, corrected_output="", label_error=False, suggested_label=None)
        elif not data.get("cause"):
            raise forms.ValidationError("请选择错误原因（按 0/1/2/3），或按 y 确认“正确，保留”。")
        return data


class AssignmentForm(forms.Form):
    """Posted as checkboxes named `assign-<category_id>` whose values are reviewer ids."""

    @staticmethod
    def reviewer_ids_by_category(post, category_ids) -> dict[int, list[int]]:
        result = {}
        for category_id in category_ids:
            values = post.getlist(f"assign-{category_id}")
            result[category_id] = [int(v) for v in values if str(v).isdigit()]
        return result
