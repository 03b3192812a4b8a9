"""The start forms of review's job kinds (each handler names its form as `form_class`) and the
form that re-runs a category's wrong samples with an edited prompt."""
from django import forms

from pipelines.jobs.forms import EngineParamsForm
from pipelines.jobs.prompts import MODE_KINDS
from review.models import Category, Dataset, Mode

from .import_uploads import import_upload_discard, import_upload_store, upload_folder


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


class RerunWrongForm(forms.Form):
    mode = forms.TypedChoiceField(label="模式", choices=Mode.choices, coerce=int)
    prompt_text = forms.CharField(label="提示词（保存为新版本）", widget=forms.Textarea(attrs={"rows": 18}))


class RerunModeForm(forms.Form):
    """The mode a re-run page is about, as sent (posted, else in the link's `?mode=`)."""

    mode = forms.CharField(required=False, strip=False)

    def mode_value(self) -> int | None:
        """The mode sent; None when none was; mode 2 for one that cannot be re-run."""
        self.is_valid()
        value = self.cleaned_data.get("mode")
        if not value:
            return None
        try:
            mode = int(value)
        except ValueError:
            return Mode.WITH_DEFINITIONS
        return mode if mode in MODE_KINDS else Mode.WITH_DEFINITIONS


def rerun_mode(post, query) -> int:
    """The re-run page's mode: the posted one, else the link's, else mode 2."""
    for data in (post, query):
        mode = RerunModeForm(data).mode_value()
        if mode is not None:
            return mode
    return Mode.WITH_DEFINITIONS


class RerunWrongLinkForm(forms.Form):
    """`/jobs/new/?kind=classification_rerun_wrong&category=<id>&mode=<n>` (the analysis pages' link)."""

    category = forms.CharField(required=False, strip=False)
    mode = forms.CharField(required=False, strip=False)

    def target(self) -> tuple[int, str] | None:
        """(category id, mode as sent), or None when the link names no category."""
        self.is_valid()
        category = self.cleaned_data.get("category", "")
        return (int(category), self.cleaned_data.get("mode", "")) if category.isdigit() else None


class ClassificationImportForm(forms.Form):
    """Start an import of the team's folder or a manifest: an upload, or a path under MEDIA_ROOT."""

    dataset = forms.CharField(label="数据集", max_length=200,
                              help_text="已有数据集的名称，或新数据集的名称（会新建）")
    upload = forms.FileField(label="上传文件", required=False,
                             help_text="JSONL 清单，或团队 train/ 目录的 .zip 压缩包（图片可以一起打包）")
    path = forms.CharField(label="或：服务器上的路径", required=False, max_length=1000,
                           help_text="MEDIA_ROOT 下的目录或 .jsonl 清单（相对路径），例如 imports/train")
    image_root = forms.CharField(label="图片目录", required=False, max_length=1000,
                                 help_text="记录里的图片是另一台机器的绝对路径（E:\\…）时：MEDIA_ROOT 下存放这些图片的目录"
                                           "（上传的 zip 不填则在压缩包里找）")
    path_prefixes = forms.CharField(label="路径前缀替换", required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                    help_text="每行一条 OLD=NEW，NEW 是 MEDIA_ROOT 下的目录")
    encoding = forms.CharField(label="非 UTF-8 文件的编码", required=False, max_length=40, help_text="例如 gbk")
    create_classes = forms.BooleanField(label="新建文件中出现、数据集还没有的类别", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stored_upload = ""

    def clean(self):
        cleaned = super().clean()
        if bool(cleaned.get("upload")) == bool((cleaned.get("path") or "").strip()):
            raise forms.ValidationError("请上传一个文件，或填写服务器上的路径（二选一）")
        prefixes = []
        for line in (cleaned.get("path_prefixes") or "").splitlines():
            if line.strip():
                old, sep, new = line.partition("=")
                if not sep or not old.strip() or not new.strip():
                    raise forms.ValidationError(f"路径前缀替换应为 OLD=NEW：{line.strip()}")
                prefixes.append([old.strip(), new.strip()])
        cleaned["prefix_pairs"] = prefixes
        return cleaned

    def job_params(self) -> dict:
        data = self.cleaned_data
        path, image_root = data["path"].strip(), data["image_root"].strip()
        if data.get("upload"):
            path = self.stored_upload = import_upload_store(data["upload"])
            # Images packed in the zip are found there (by their paths' last folders and file name).
            image_root = image_root or upload_folder(path)
        return {"dataset": data["dataset"].strip(), "path": path, "image_root": image_root,
                "path_prefixes": data["prefix_pairs"], "encoding": data["encoding"].strip(),
                "create_classes": data["create_classes"]}

    def discard(self) -> None:
        """The job was not created: remove what the upload stored."""
        if self.stored_upload:
            import_upload_discard(self.stored_upload)
