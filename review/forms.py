"""Forms that validate what reviewers post; services do the writing."""
from django import forms

from .models import Category, Cause, Dataset
from .parsing import match_category_name

ACTION_SAVE, ACTION_KEEP = "save", "keep"
# What the suggested-class field takes for "a label error, but I am not sure which class".
UNCERTAIN = "不确定"


class ReviewForm(forms.Form):
    """The sample page's review form. `action=keep` means "correct, keep the model's output"
    (`review_keep` decides whether that is allowed); the suggested class is typed by name
    (type-to-filter) or picked by id, or is 不确定."""

    cause = forms.ChoiceField(choices=Cause.choices, required=False)
    corrected_output = forms.CharField(required=False, strip=False, max_length=20_000)
    correction_override = forms.BooleanField(required=False)
    label_error = forms.BooleanField(required=False)
    suggested_label = forms.ModelChoiceField(queryset=Category.objects.none(), required=False)
    suggested_label_name = forms.CharField(required=False, max_length=200)
    note = forms.CharField(required=False, max_length=5_000)
    version = forms.IntegerField(min_value=0)
    action = forms.ChoiceField(choices=[(ACTION_SAVE, "保存"), (ACTION_KEEP, "正确，保留")], required=False)

    def __init__(self, *args, dataset: Dataset, **kwargs):
        super().__init__(*args, **kwargs)
        self.dataset = dataset
        self.fields["suggested_label"].queryset = Category.objects.filter(dataset=dataset)

    def clean(self):
        data = super().clean()
        data["suggestion_uncertain"] = False
        name = (data.get("suggested_label_name") or "").strip()
        if name == UNCERTAIN:
            data["suggested_label"], data["suggestion_uncertain"] = None, True
        elif name:
            names = list(Category.objects.filter(dataset=self.dataset).values_list("name", flat=True))
            found = name if name in names else match_category_name(name, names)
            if found is None:
                raise forms.ValidationError(f"没有叫“{name}”的类别：请从列表中选择，或选“{UNCERTAIN}”。")
            data["suggested_label"] = Category.objects.get(dataset=self.dataset, name=found)
        if data.get("action") != ACTION_KEEP and not data.get("cause"):
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
