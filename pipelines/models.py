"""Jobs and what they produce.

A Job is one run of a pipeline (classification, generation + judge, DPO, log or feedback
extraction); each unit of work is a JobItem whose outcome is stored, so a job's state can always be
derived from the database. The other models are the rows those jobs create and humans review.
"""
from django.conf import settings
from django.db import models


class JobKind(models.TextChoices):
    CLASSIFICATION = "classification", "分类推理"
    INFO_EXTRACTION = "info_extraction", "信息提取"
    GENERATION = "generation", "生成 + 评判"
    LOG_EXTRACTION = "log_extraction", "日志提取"
    FEEDBACK_IMPORT = "feedback_import", "反馈导入"
    DPO = "dpo", "DPO 偏好对"
    CORRECTION_DRAFT = "correction_draft", "修正草稿"
    CLASSIFICATION_IMPORT = "classification_import", "导入分类结果"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "排队中"
    RUNNING = "running", "运行中"
    CANCELLING = "cancelling", "取消中"
    CANCELLED = "cancelled", "已取消"
    DONE = "done", "完成"
    FAILED = "failed", "失败"


class Job(models.Model):
    kind = models.CharField(max_length=32, choices=JobKind.choices)
    params = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    # Counters are a cache of the items' states, refreshed by the job service.
    items_total = models.PositiveIntegerField(default=0)
    items_done = models.PositiveIntegerField(default=0)
    items_failed = models.PositiveIntegerField(default=0)
    # How often the job's message has been delivered to a worker (poison-job guard).
    deliveries = models.PositiveIntegerField(default=0)
    # The one execution running the job holds this lease and renews heartbeat_at (pipelines/jobs/leases.py);
    # a second delivery of the same message finds it held and does not run the items again.
    lease_token = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When the job's last message reached the broker; empty while it could not be sent (broker down),
    # so the workers' sweeper knows which queued jobs still need one.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    report = models.JSONField(default=dict, blank=True)
    error_summary = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status"]), models.Index(fields=["kind", "-created_at"])]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in {JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING}


class ItemStatus(models.TextChoices):
    PENDING = "pending", "待处理"
    RUNNING = "running", "处理中"
    DONE = "done", "完成"
    FAILED = "failed", "失败"


class JobItem(models.Model):
    """One unit of a job (a sample, a source item, a prompt …) identified by `key` within the job."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="items")
    key = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=ItemStatus.choices, default=ItemStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # A short stable reason such as "content_filter", "unparseable", "timeout", "rate_limited".
    error_kind = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "id"]
        constraints = [models.UniqueConstraint(fields=["job", "key"], name="job_item_unique_key")]
        indexes = [models.Index(fields=["job", "status"])]

    def __str__(self):
        return f"{self.job_id}:{self.key}"


class PromptTemplate(models.Model):
    """An editable, versioned prompt. Saving a change creates a new version; rows record the version."""

    class Kind(models.TextChoices):
        CLASSIFICATION_MODE1 = "classification_mode1", "分类 模式1"
        CLASSIFICATION_MODE2 = "classification_mode2", "分类 模式2"
        CLASSIFICATION_MODE3 = "classification_mode3", "分类 模式3"
        INFO_EXTRACTION = "info_extraction", "信息提取"
        GENERATION_QUESTION = "generation_question", "生成 问题"
        GENERATION_RESPONSE = "generation_response", "生成 回答"
        JUDGE = "judge", "评判"
        DPO_REJECT = "dpo_reject", "DPO reject"
        CORRECTION_DRAFT = "correction_draft", "修正草稿"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    version = models.PositiveIntegerField()
    text = models.TextField()
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "-version"]
        constraints = [models.UniqueConstraint(fields=["kind", "version"], name="prompt_template_unique_version")]

    def __str__(self):
        return f"{self.get_kind_display()} v{self.version}"


class Export(models.Model):
    """Every training-data export, whoever made it and however (browser, API, command line).

    Each export is a folder of its own under EXPORT_ROOT (`path`, relative to it), written once and
    never changed: the data files, their LLaMA-Factory `dataset_info.json` and reports (`files`).
    Made by `pipelines.datasets.exports.export_create`; downloaded through `pipelines.datasets.exports.export_file`.
    """

    kind = models.CharField(max_length=64)  # "classification_trainset", "builder", "logs", "generation", "dpo" …
    format = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="exports")
    created_at = models.DateTimeField(auto_now_add=True)
    row_count = models.PositiveIntegerField(default=0)
    path = models.CharField(max_length=500, blank=True, help_text="The export's folder, relative to EXPORT_ROOT.")
    files = models.JSONField(default=list, blank=True, help_text="Names of the files in the folder.")
    dataset_info = models.JSONField(default=dict, blank=True, help_text="The folder's dataset_info.json entries.")
    report = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.kind} ({self.format}) #{self.pk}"


class ReviewDecision(models.TextChoices):
    """What a human decided about a machine-made row (generation, feedback, DPO)."""

    PENDING = "pending", "待审核"
    ACCEPTED = "accepted", "接受"
    EDITED = "edited", "修改后接受"
    REJECTED = "rejected", "拒绝"


class SourceItem(models.Model):
    """Generation input: an image with a wiki title and optional facts (the team's data_clean.json)."""

    collection = models.CharField(max_length=200, help_text="Name of the imported source file/set.")
    external_id = models.CharField(max_length=255)
    image = models.CharField(max_length=500, blank=True)
    wiki_title = models.CharField(max_length=500, blank=True)
    facts = models.JSONField(default=list, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["collection", "id"]
        constraints = [models.UniqueConstraint(fields=["collection", "external_id"], name="source_item_unique_id")]

    def __str__(self):
        return self.wiki_title or self.external_id


class GeneratedExample(models.Model):
    """A generated question + <look>/<think>/<answer> response and the judge's verdict on it."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="generated_examples")
    source_item = models.ForeignKey(SourceItem, on_delete=models.CASCADE, related_name="examples")
    example_id = models.CharField(max_length=255)
    question = models.TextField(blank=True)
    is_multiple_choice = models.BooleanField(default=False)
    response = models.TextField(blank=True)
    structure_ok = models.BooleanField(default=False)
    passed = models.BooleanField(default=False)
    overall_score = models.FloatField(null=True, blank=True)
    validation_result = models.JSONField(default=dict, blank=True)
    failure_reasons = models.JSONField(default=list, blank=True)
    judge_raw = models.TextField(blank=True)
    decision = models.CharField(max_length=16, choices=ReviewDecision.choices, default=ReviewDecision.PENDING)
    edited_response = models.TextField(blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["job", "id"]
        constraints = [models.UniqueConstraint(fields=["job", "source_item"], name="generated_example_unique_item")]
        indexes = [models.Index(fields=["job", "passed"])]

    def __str__(self):
        return self.example_id


class LogRecord(models.Model):
    """A prompt/answer pair extracted from an LLM call log line."""

    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="log_records")
    source_file = models.CharField(max_length=500)
    line_no = models.PositiveIntegerField()
    prompt = models.TextField()
    response = models.TextField()
    model_name = models.CharField(max_length=200, blank=True)
    content_hash = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["source_file", "line_no"]
        constraints = [models.UniqueConstraint(fields=["source_file", "line_no"], name="log_record_unique_line")]

    def __str__(self):
        return f"{self.source_file}:{self.line_no}"


class FeedbackSample(models.Model):
    """A rated conversation from user feedback (instruction, input, output, rating 1–5)."""

    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback_samples")
    feedback_id = models.CharField(max_length=255, unique=True)
    instruction = models.TextField()
    input = models.TextField(blank=True)
    output = models.TextField()
    rating = models.PositiveSmallIntegerField()
    model_name = models.CharField(max_length=200, blank=True, db_index=True)
    rated_at = models.DateTimeField(null=True, blank=True)
    decision = models.CharField(max_length=16, choices=ReviewDecision.choices, default=ReviewDecision.PENDING)
    edited_output = models.TextField(blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-rated_at", "id"]
        indexes = [models.Index(fields=["rating"]), models.Index(fields=["decision"])]

    def __str__(self):
        return self.feedback_id


class PreferencePair(models.Model):
    """A DPO pair: a prompt, a chosen answer and a worse ("rejected") answer to the same prompt."""

    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.CASCADE, related_name="preference_pairs")
    key = models.CharField(max_length=255, help_text="Stable id of the prompt within its source.")
    source = models.CharField(max_length=64, help_text="Where the prompt/chosen came from.")
    prompt = models.TextField()
    chosen = models.TextField()
    rejected = models.TextField(blank=True)
    # Image paths (relative to MEDIA_ROOT) for multimodal prompts, one "<image>" token each.
    images = models.JSONField(default=list, blank=True)
    strategy = models.CharField(max_length=64, blank=True)
    # Stable issue names: pipelines.dpo.checks.ISSUE_NAMES (identical, off_topic, echo, boilerplate, …).
    issues = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    decision = models.CharField(max_length=16, choices=ReviewDecision.choices, default=ReviewDecision.PENDING)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["job", "id"]
        constraints = [models.UniqueConstraint(fields=["job", "key"], name="preference_pair_unique_key")]

    def __str__(self):
        return f"pair {self.key}"


class WorkerHeartbeat(models.Model):
    """A Celery worker's own record that it is alive, written by the worker every
    WORKER_HEARTBEAT_SECONDS (pipelines/jobs/workers.py) and removed when it shuts down. The queue monitor
    reads these: they work with any broker (the SQLite one answers no broadcast) and list the jobs the
    worker runs. A row whose last_seen is old belongs to a worker that died without shutting down."""

    name = models.CharField(max_length=255, unique=True, help_text="The worker's node name (celery@host).")
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    queues = models.JSONField(default=list)
    concurrency = models.PositiveIntegerField(null=True, blank=True)
    # What it runs now: [{"task_id", "task", "job_id", "since"}].
    active = models.JSONField(default=list)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name
