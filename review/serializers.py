"""DRF serializers: they shape and validate; writes go through the services."""
from django.urls import reverse
from rest_framework import serializers

from pipelines.datasets.exports import data_files
from pipelines.models import Export

from .exports import TRAINSET_FORMATS
from .models import Assignment, Category, Cause, Dataset, Reasoning, Review, Sample


class DatasetSerializer(serializers.ModelSerializer):
    category_count = serializers.IntegerField(read_only=True)
    sample_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Dataset
        fields = ["id", "name", "description", "created_at", "category_count", "sample_count"]


class CategorySerializer(serializers.ModelSerializer):
    effective_definition = serializers.CharField(read_only=True)

    class Meta:
        model = Category
        fields = ["id", "dataset", "name", "definition", "revised_definition", "effective_definition", "position"]


class CategoryCountsSerializer(serializers.Serializer):
    """review.rules.ClassCounts: the numbers every page shows for a class."""

    total = serializers.IntegerField()
    reviewed = serializers.IntegerField()
    mode2_errors = serializers.IntegerField()
    analysed = serializers.IntegerField()
    label_errors = serializers.IntegerField()
    exported = serializers.IntegerField()
    pending = serializers.IntegerField()
    rerun_pending = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField())
    causes = serializers.DictField(child=serializers.IntegerField())


class ReasoningSerializer(serializers.ModelSerializer):
    class Meta:
        model = Reasoning
        fields = ["id", "mode", "output", "predicted_name", "predicted_category", "is_correct", "length", "model_name",
                  "version", "pending_version"]


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Review
        fields = [
            "id", "sample", "reviewer", "cause", "corrected_output", "correction_override", "label_error",
            "suggested_label", "suggestion_uncertain", "note", "judged_versions", "version", "created_at", "updated_at",
        ]
        read_only_fields = fields


class SampleSerializer(serializers.ModelSerializer):
    label_name = serializers.CharField(source="label.name", read_only=True)
    reasonings = ReasoningSerializer(many=True, read_only=True)
    review = serializers.SerializerMethodField()
    can_change = serializers.SerializerMethodField()
    # review.rules: what the export does with the sample (kept, corrected, label_error, or why not)
    export_status = serializers.CharField(read_only=True)
    # review.suspicion: how strongly the evidence says the label is wrong (0–1), and the class it names
    label_suspicion = serializers.SerializerMethodField()
    label_suspicion_class = serializers.SerializerMethodField()

    class Meta:
        model = Sample
        fields = ["id", "dataset", "external_id", "image", "label", "label_name", "reasonings", "review", "can_change",
                  "export_status", "label_suspicion", "label_suspicion_class"]

    def get_label_suspicion(self, sample) -> float:
        return sample.label_suspicion

    def get_label_suspicion_class(self, sample) -> str | None:
        try:
            suggested = sample.suspicion.suggested_category
        except Sample.suspicion.RelatedObjectDoesNotExist:
            return None
        return suggested.name if suggested else None

    def get_review(self, sample) -> dict | None:
        review = getattr(sample, "review", None)
        return ReviewSerializer(review).data if review is not None else None

    def get_can_change(self, sample) -> bool:
        # `changeable` (None = everything) is computed once per request by the view.
        changeable = self.context.get("changeable")
        return changeable is None or sample.label_id in changeable


class ReviewWriteSerializer(serializers.Serializer):
    """A reviewer's verdict. `version` is the review version you read (0 for a sample without one)."""

    sample = serializers.PrimaryKeyRelatedField(queryset=Sample.objects.select_related("label"), required=False)
    cause = serializers.ChoiceField(choices=[("", "未标注")] + list(Cause.choices), required=False, allow_blank=True)
    corrected_output = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    label_error = serializers.BooleanField(required=False)
    suggested_label = serializers.PrimaryKeyRelatedField(queryset=Category.objects.all(), required=False, allow_null=True)
    note = serializers.CharField(required=False, allow_blank=True)
    version = serializers.IntegerField(min_value=0)
    suggestion_uncertain = serializers.BooleanField(required=False)
    correction_override = serializers.BooleanField(required=False)


class AssignmentSerializer(serializers.ModelSerializer):
    reviewer_username = serializers.CharField(source="reviewer.username", read_only=True)
    category_name = serializers.CharField(source="category.name", read_only=True)
    assigned_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Assignment
        fields = ["id", "reviewer", "reviewer_username", "category", "category_name", "assigned_by", "assigned_at"]
        read_only_fields = ["assigned_by", "assigned_at"]
        # Uniqueness is the service's business (it keeps the set); no extra validator queries.
        validators = []


class ExportSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    download_url = serializers.SerializerMethodField()
    file_urls = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = ["id", "kind", "format", "params", "created_by", "created_at", "row_count", "files", "dataset_info",
                  "report", "download_url", "file_urls"]
        read_only_fields = fields

    def get_download_url(self, export) -> str | None:
        """The training file (the first one its dataset_info names), through the one download view."""
        names = data_files(export)
        return reverse("exports:file", args=[export.pk, names[0]]) if names else None

    def get_file_urls(self, export) -> dict[str, str]:
        return {name: reverse("exports:file", args=[export.pk, name]) for name in export.files or []}


class ExportCreateSerializer(serializers.Serializer):
    dataset = serializers.PrimaryKeyRelatedField(queryset=Dataset.objects.all())
    format = serializers.ChoiceField(choices=sorted(TRAINSET_FORMATS))
