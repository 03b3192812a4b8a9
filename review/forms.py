"""Forms that read what reviewers send (posted fields, filters and choices in the query string);
services do the writing."""
from django import forms

from core.forms import read_data, text_field

from .models import Category, Cause, CorrectionDraft, Dataset, Mode
from .parsing import match_category_name
from .selectors import DEFAULT_FILTER, DEFAULT_SORT, QUEUE_SORTS, queue_filters

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
    # The drafted correction the edit box started from (set when the reviewer accepted it).
    correction_draft = text_field()

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

    def typed(self) -> dict:
        """What the reviewer typed, as the page shows it back when the save fails."""
        data = self.data
        return {
            "cause": data.get("cause", ""),
            "corrected_output": data.get("corrected_output", ""),
            "correction_override": bool(data.get("correction_override")),
            "label_error": bool(data.get("label_error")),
            "suggested_label_name": data.get("suggested_label_name", ""),
            "note": data.get("note", ""),
            "correction_draft": data.get("correction_draft", ""),
        }

    def shown_output(self) -> str | None:
        """The mode-3 text the page showed when the reviewer kept it (None: the request sent none)."""
        return self.data["corrected_output"] if "corrected_output" in self.data else None

    def posted_draft(self) -> CorrectionDraft | None:
        """The drafted correction the edit box started from, if the request names one that exists."""
        value = self.data.get("correction_draft", "").strip()
        return CorrectionDraft.objects.filter(pk=int(value)).first() if value.isdigit() else None


class AssignmentForm(forms.Form):
    """Posted as checkboxes named `assign-<category_id>` whose values are reviewer ids, and
    `confirm_unassigned` once staff agreed to leave some classes without a reviewer."""

    confirm_unassigned = text_field()

    def __init__(self, *args, category_ids, **kwargs):
        super().__init__(*args, **kwargs)
        self.category_ids = list(category_ids)

    def reviewer_ids_by_category(self) -> dict[int, list[int]]:
        result = {}
        for category_id in self.category_ids:
            values = self.data.getlist(f"assign-{category_id}")
            result[category_id] = [int(v) for v in values if str(v).isdigit()]
        return result

    def confirmed(self) -> bool:
        return bool(read_data(self).get("confirm_unassigned"))


class HomeForm(forms.Form):
    """The home page's dataset (`?dataset=<id>`); blank: the user's first assigned one."""

    dataset = text_field()

    def dataset_id(self) -> str:
        return read_data(self).get("dataset", "")


class QueueStateForm(forms.Form):
    """The queue a page or a save is in: filter `f` and sort `s` (an unknown one is the default)."""

    f = text_field()
    s = text_field()

    def state(self) -> tuple[str, str]:
        data = read_data(self)
        filter_key, sort_key = data.get("f", ""), data.get("s", "")
        return (filter_key if filter_key in queue_filters() else DEFAULT_FILTER,
                sort_key if sort_key in QUEUE_SORTS else DEFAULT_SORT)


class CorrectionCheckForm(forms.Form):
    """The mode-3 correction being typed, for its live check, with the label-error fields beside it."""

    corrected_output = text_field()
    label_error = text_field()
    cause = text_field()
    suggested_label_name = text_field()

    def text(self) -> str:
        return read_data(self).get("corrected_output", "")

    def label_error_claimed(self) -> bool:
        data = read_data(self)
        return bool(data.get("label_error")) or data.get("cause") == Cause.LABEL_WRONG

    def suggested_name(self) -> str:
        return read_data(self).get("suggested_label_name", "").strip()


class RerunDecisionForm(forms.Form):
    """Take a re-run's model outputs (`decision=accept`) or keep the reviewed ones (anything else)."""

    decision = text_field()

    def accept(self) -> bool:
        return read_data(self).get("decision") == "accept"


class ConfusionForm(forms.Form):
    """The confusion table's mode (`?mode=`); none or one that is not a mode: mode 2."""

    mode = text_field()

    def mode_value(self) -> int:
        value = read_data(self).get("mode") if "mode" in self.data else Mode.WITH_DEFINITIONS
        try:
            return Mode(int(value)).value
        except ValueError:
            return Mode.WITH_DEFINITIONS


class DefinitionForm(forms.Form):
    """A revised class definition as typed (`definition_revise` checks it)."""

    text = text_field()

    def typed_text(self) -> str:
        return read_data(self).get("text", "")


class TrainsetExportForm(forms.Form):
    """The training-set export's format (`trainset_export` checks it)."""

    format = text_field()

    def fmt(self) -> str:
        return read_data(self).get("format", "")


class SuspectsForm(forms.Form):
    """疑似标签错误: `?all=1` shows every class, not only the user's."""

    all = text_field()

    def every_class(self) -> bool:
        return read_data(self).get("all") == "1"
