"""The scene-classification review data: datasets of images in categories, the model's
reasoning for each image under three prompt modes, and the reviewers' verdicts."""
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import models


class Dataset(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    # The team's own mode-3 prompt (`import_classification --prompt-file`): the exported instruction.
    mode3_prompt = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Category(models.Model):
    """A scene class. `definition` is the official text; `revised_definition` the team's own."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="categories")
    name = models.CharField(max_length=200)
    definition = models.TextField(blank=True)
    revised_definition = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["dataset", "position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "name"], name="category_unique_name_per_dataset")
        ]
        verbose_name_plural = "categories"

    def __str__(self):
        return self.name

    @property
    def effective_definition(self) -> str:
        return self.revised_definition or self.definition


class DefinitionRevision(models.Model):
    """Every saved revised definition, so the history of a category's wording is kept."""

    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="definition_revisions")
    version = models.PositiveIntegerField()
    text = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["category", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["category", "version"], name="definition_revision_unique_version")
        ]

    def __str__(self):
        return f"{self.category} v{self.version}"


# The stored verdict columns the queue filters test (review.selectors.queue_filters).
QUEUE_FILTER_COLUMNS = ("export_status", "mode2_error", "analysed", "model_status", "mode3_over", "reviewed",
                        "rerun_pending")


class Sample(models.Model):
    """One image with its dataset label. `image` is a path relative to MEDIA_ROOT."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="samples")
    external_id = models.CharField(max_length=255)
    image = models.CharField(max_length=500, blank=True)
    label = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="samples")
    # Structured description of the image (visible text, objects, screen elements).
    image_info = models.JSONField(null=True, blank=True)
    # The team's own description of the image (`picture2text` of their info-extraction files).
    description = models.TextField(blank=True)
    # Where each mode's record was read from on import ({"mode3": {"file", "shape", "position",
    # "record", "output_key"}}), so the team-layout export writes it back in the same shape.
    provenance = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # The rules' verdict on the sample (review.rules), stored so queue filters, sorts and counts
    # need no joins and cost the same in a class of 100 or of 100,000 samples. Written only by
    # review.counts: samples_refresh, which computes them with rules.with_status, and for samples
    # an import creates new_sample_values (the same rules, evaluated in memory).
    export_status = models.CharField(max_length=20, default="missing")
    model_status = models.CharField(max_length=20, default="missing")
    mode2_error = models.BooleanField(default=False)
    analysed = models.BooleanField(default=False)
    reviewed = models.BooleanField(default=False)
    rerun_pending = models.BooleanField(default=False)
    mode3_over = models.BooleanField(default=False)
    # "r2w" mode 2 right → mode 3 not; "w2r" the other way round; "" otherwise.
    mode_change = models.CharField(max_length=3, blank=True)
    mode3_length = models.IntegerField(null=True, blank=True)
    # Ascending sort keys (external_id breaks ties): mode-2 errors first, longest mode 3 first,
    # most recently reviewed first.
    sort_mode2 = models.SmallIntegerField(default=2)
    sort_length = models.IntegerField(default=0)
    sort_reviewed = models.BigIntegerField(default=0)
    # The combination SampleCount counts the sample under (see review.counts).
    counted_key = models.CharField(max_length=200, blank=True)
    # How strongly the evidence says the label is wrong (0–1, review.suspicion: LabelSuspicion has
    # the reasons) and its ascending sort key (most suspect first), written only by
    # review.suspicion.suspicions_refresh (and, for samples an import creates, with the sample from
    # the same computation): the 疑似标签错误 filter and sort need no join.
    label_suspicion = models.FloatField(default=0.0)
    sort_suspicion = models.IntegerField(default=0)

    class Meta:
        ordering = ["label", "external_id"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "external_id"], name="sample_unique_external_id")
        ]
        # One index per queue order, (label, sort column, external_id), carrying every filter column
        # after the key: a queue page or a sample's neighbours and position under any filter are read
        # from the index alone, never row by row from the table (a rare filter over a 100,000-sample
        # class scanned the table for its next match: 50–100 ms at 1M samples, 10–20 ms covered).
        indexes = [
            models.Index(fields=["label", "external_id", *QUEUE_FILTER_COLUMNS], name="sample_queue_by_id"),
            models.Index(fields=["label", "sort_mode2", "external_id", *QUEUE_FILTER_COLUMNS],
                         name="sample_queue_by_mode2"),
            models.Index(fields=["label", "sort_length", "external_id", *QUEUE_FILTER_COLUMNS],
                         name="sample_queue_by_length"),
            models.Index(fields=["label", "sort_reviewed", "external_id", *QUEUE_FILTER_COLUMNS],
                         name="sample_queue_by_reviewed"),
            models.Index(fields=["label", "export_status", "external_id"], name="sample_export_status"),
            models.Index(fields=["label", "mode2_error", "analysed", "external_id"], name="sample_mode2_error"),
            models.Index(fields=["label", "model_status", "external_id"], name="sample_model_status"),
            # "模型已重跑" is usually empty or small: its neighbours are found here, not by scanning
            # the class's whole covering index for a match (14 ms in a 100,000-sample class). Partial:
            # with rerun_pending as a key column the planner took it for queries that do not filter
            # on it, and scanned the whole class.
            models.Index(fields=["label", "external_id"], condition=models.Q(rerun_pending=True),
                         name="sample_rerun_pending"),
            models.Index(fields=["label", "sort_suspicion", "external_id"], name="sample_sort_suspicion"),
        ]

    def __str__(self):
        return self.external_id

    @property
    def review_or_none(self):
        """The sample's review, or None. For templates: `sample.review` on an unreviewed sample
        raises, which a template swallows only after a dir() of the sample (~0.1 ms each time)."""
        try:
            return self.review
        except ObjectDoesNotExist:
            return None


class Mode(models.IntegerChoices):
    FREE = 1, "模式1 自由推理"
    WITH_DEFINITIONS = 2, "模式2 给出类别定义"
    LIMITED = 3, "模式3 定义 + 限制字数"


class Reasoning(models.Model):
    """The model's explanation of one sample under one prompt mode: the version every page, the
    analysis and the export use.

    A later model output for the same sample and mode becomes a new `version`. On a sample nobody
    has reviewed it replaces this row at once (the old text is kept as a ReasoningVersion). On a
    reviewed sample it waits as a pending ReasoningVersion (`pending_version`) until a reviewer
    accepts it, so a review never describes text that is no longer there.
    """

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="reasonings")
    mode = models.PositiveSmallIntegerField(choices=Mode.choices)
    output = models.TextField(blank=True)
    # What the output named as the class; empty when the answer could not be parsed.
    predicted_name = models.CharField(max_length=200, blank=True)
    predicted_category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # None when the prediction is unparseable: neither right nor wrong.
    is_correct = models.BooleanField(null=True)
    length = models.PositiveIntegerField(default=0, help_text="Characters (字数) or tokens when configured.")
    model_name = models.CharField(max_length=200, blank=True)
    prompt_template = models.ForeignKey(
        "pipelines.PromptTemplate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    raw_response = models.JSONField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    # The newest model output waiting for a reviewer's decision (None: nothing waits).
    pending_version = models.PositiveIntegerField(null=True, blank=True)
    # The combination ReasoningCount counts this reasoning under (see review.counts).
    counted_key = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sample", "mode"]
        constraints = [models.UniqueConstraint(fields=["sample", "mode"], name="reasoning_unique_mode")]
        indexes = [models.Index(fields=["mode", "is_correct"])]

    def __str__(self):
        return f"{self.sample} mode {self.mode}"

    @property
    def thinking(self) -> str:
        """A thinking model's reasoning (`reasoning_content`), kept in the raw response."""
        raw = self.raw_response if isinstance(self.raw_response, dict) else {}
        return str(raw.get("reasoning_content") or "")

    @property
    def finish_reason(self) -> str:
        raw = self.raw_response if isinstance(self.raw_response, dict) else {}
        return str(raw.get("finish_reason") or "")


class ReasoningVersion(models.Model):
    """A model output of a (sample, mode) that pages and exports do not use: an earlier output a
    re-run replaced, or a re-run's output waiting for the reviewer (see Reasoning)."""

    class Status(models.TextChoices):
        SUPERSEDED = "superseded", "已被替换"
        PENDING = "pending", "待审核人确认"
        DISCARDED = "discarded", "审核人未采用"

    reasoning = models.ForeignKey(Reasoning, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices)
    output = models.TextField(blank=True)
    predicted_name = models.CharField(max_length=200, blank=True)
    predicted_category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_correct = models.BooleanField(null=True)
    length = models.PositiveIntegerField(default=0)
    model_name = models.CharField(max_length=200, blank=True)
    prompt_template = models.ForeignKey(
        "pipelines.PromptTemplate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    raw_response = models.JSONField(null=True, blank=True)
    # Where the output came from ("import", "job 12"), for the sample page.
    source = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["reasoning", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["reasoning", "version"], name="reasoning_version_unique")
        ]

    def __str__(self):
        return f"{self.reasoning} v{self.version} ({self.status})"


class SampleCount(models.Model):
    """How many samples of a category share one combination of the rules' statuses.

    The per-class numbers of every page are sums over these rows, so they cost the same whatever
    the size of the class or dataset. Kept up to date on every write by review.counts.
    """

    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+")
    export_status = models.CharField(max_length=20)
    model_status = models.CharField(max_length=20)
    mode2_error = models.BooleanField()
    analysed = models.BooleanField()
    reviewed = models.BooleanField()
    rerun_pending = models.BooleanField()
    mode3_over = models.BooleanField()
    mode_change = models.CharField(max_length=3, blank=True)
    cause = models.CharField(max_length=32, blank=True)
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["category", "export_status", "model_status", "mode2_error", "analysed", "reviewed",
                        "rerun_pending", "mode3_over", "mode_change", "cause"],
                name="sample_count_unique_key",
            )
        ]

    def __str__(self):
        return f"{self.category_id} {self.export_status}: {self.count}"


class ReasoningCount(models.Model):
    """How many reasonings of one mode, for samples labelled `category`, named `predicted_id` (None:
    unparseable), right or not, over the length limit or not; and their summed length (for the mean).
    Kept up to date on every write by review.counts."""

    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+")
    mode = models.PositiveSmallIntegerField(choices=Mode.choices)
    predicted_id = models.IntegerField(null=True, blank=True)
    is_correct = models.BooleanField(null=True)
    over_limit = models.BooleanField()
    count = models.IntegerField(default=0)
    length_sum = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["category", "mode", "predicted_id", "is_correct", "over_limit"],
                name="reasoning_count_unique_key", nulls_distinct=False,
            )
        ]

    def __str__(self):
        return f"{self.category_id} mode {self.mode} → {self.predicted_id}: {self.count}"


class CountsBasis(models.Model):
    """The length limit the stored statuses and counts were computed with; when the setting
    differs, review.counts recomputes them all."""

    length_limit = models.IntegerField(null=True)
    updated_at = models.DateTimeField(auto_now=True)


class Cause(models.TextChoices):
    """Why mode 2 got a sample wrong, in the seed's numbering."""

    NONE = "none", "无错误"
    DEFINITIONS_OVERLAP = "definitions_overlap", "(1) 类别定义有交集"
    LABEL_WRONG = "label_wrong", "(2) 数据集标签错误"
    MODEL_WEAK = "model_weak", "(3) 模型能力不足"


class Review(models.Model):
    """A reviewer's verdict on one sample. One per sample; `version` guards concurrent edits."""

    sample = models.OneToOneField(Sample, on_delete=models.CASCADE, related_name="review")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="reviews"
    )
    cause = models.CharField(max_length=32, choices=Cause.choices, blank=True)
    corrected_output = models.TextField(blank=True)
    label_error = models.BooleanField(default=False)
    suggested_label = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A label error names the right class or says explicitly that the reviewer is not sure.
    suggestion_uncertain = models.BooleanField(default=False)
    # The class the corrected output names and its length, as checked when it was saved
    # (review.rules.check_correction); the export compares them with the label and the limit.
    corrected_category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    corrected_length = models.PositiveIntegerField(default=0)
    # The reviewer saved a correction that fails the checks on purpose (with a note saying why).
    correction_override = models.BooleanField(default=False)
    # {mode: Reasoning.version} of the outputs this review judged.
    judged_versions = models.JSONField(default=dict, blank=True)
    note = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["label_error"]), models.Index(fields=["cause"])]

    def __str__(self):
        return f"review of {self.sample}"


class ReviewEdit(models.Model):
    """One saved change to a review: who, when, and the fields before and after."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="edits")
    editor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    version = models.PositiveIntegerField()
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    restored_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["review", "-version"]

    def __str__(self):
        return f"{self.review} v{self.version}"


class Assignment(models.Model):
    """A reviewer is responsible for (and may change) the samples of a category."""

    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="assignments")
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["category"]
        constraints = [
            models.UniqueConstraint(fields=["reviewer", "category"], name="assignment_unique_reviewer_category")
        ]

    def __str__(self):
        return f"{self.reviewer} → {self.category}"


class LabelSuspicion(models.Model):
    """How strongly the evidence the product already has says a sample's dataset label is wrong
    (`review.suspicion`): a score from 0 to 1, the class the evidence points to, and the evidence
    itself, as the sample page explains it. Recomputed whenever that evidence changed
    (`fingerprint`); never touched by reviews."""

    sample = models.OneToOneField(Sample, on_delete=models.CASCADE, related_name="suspicion")
    score = models.FloatField(default=0.0)
    suggested_category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The witnesses (review.suspicion.Witness as dicts) the score was computed from.
    evidence = models.JSONField(default=list, blank=True)
    # A hash of everything the score was computed from; a different one means "recompute".
    fingerprint = models.CharField(max_length=40)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["score"], name="label_suspicion_score")]

    def __str__(self):
        return f"{self.sample} suspicion {self.score:.2f}"


class CorrectionDraft(models.Model):
    """A model-drafted correction of a sample's mode-3 output (job kind "correction_draft").

    A suggestion only: it reaches the training set solely through a reviewer's saved correction
    (`review.services.review_save`), which records that it started from this draft and whether the
    reviewer changed it. The draft is tied to the mode-3 version it rewrites, so a re-run output
    never gets a stale draft offered.
    """

    class Status(models.TextChoices):
        OFFERED = "offered", "待审核人处理"
        ACCEPTED = "accepted", "已采用"
        DISCARDED = "discarded", "已丢弃"
        SUPERSEDED = "superseded", "已被新草稿替换"

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="correction_drafts")
    text = models.TextField()
    # The Reasoning.version of the mode-3 output this draft rewrites.
    mode3_version = models.PositiveIntegerField()
    # What review.rules.check_correction found when the draft was stored (re-checked when shown).
    predicted_name = models.CharField(max_length=200, blank=True)
    length = models.PositiveIntegerField(default=0)
    problems = models.JSONField(default=list, blank=True)
    # External ids of the same-class outputs the model was shown as examples.
    examples = models.JSONField(default=list, blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    job = models.ForeignKey("pipelines.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OFFERED)
    # The review whose saved correction started from this draft, and whether it differs from it.
    review = models.ForeignKey(Review, null=True, blank=True, on_delete=models.SET_NULL, related_name="drafts_used")
    edited = models.BooleanField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sample", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["sample", "job"], name="correction_draft_one_per_job"),
        ]
        indexes = [models.Index(fields=["sample", "status"], name="correction_draft_status")]

    def __str__(self):
        return f"draft for {self.sample} ({self.status})"
