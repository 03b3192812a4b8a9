"""The REST API (DRF). Querysets are filtered to what the user may see in `get_queryset()`;
writes go through the services, whose ApplicationError codes become HTTP statuses:
forbidden → 403, conflict → 409, not_found → 404, anything else → 400."""
from django.db.models import Count, IntegerField, OuterRef, Subquery
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response

from pipelines.models import Export

from . import rules, services
from .counts import category_counts
from core.errors import ApplicationError
from .exports import trainset_export, visible_exports
from .filters import AssignmentFilter, CategoryFilter, ExportFilter, ReviewFilter, SampleFilter
from .models import Assignment, Category, Dataset, Review, Sample
from .permissions import changeable_category_ids
from .serializers import (
    AssignmentSerializer, CategoryCountsSerializer, CategorySerializer, DatasetSerializer, ExportCreateSerializer,
    ExportSerializer, ReviewSerializer, ReviewWriteSerializer, SampleSerializer,
)


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "有人在你之后修改了这条记录。"
    default_code = "conflict"


class _ConflictResponse(Exception):
    def __init__(self, data: dict):
        super().__init__(data.get("detail", "conflict"))
        self.data = data


def api_error(exc: ApplicationError) -> APIException:
    """The DRF exception for a service's ApplicationError."""
    if exc.code == "forbidden":
        return PermissionDenied(exc.message)
    if exc.code == "conflict":
        return Conflict({"detail": exc.message, **exc.extra})
    if exc.code == "not_found":
        return NotFound(exc.message)
    return ValidationError({"detail": exc.message, "code": exc.code})


class IsStaffForWrites(permissions.BasePermission):
    """Everyone signed in may read; only staff may write."""

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        return request.method in permissions.SAFE_METHODS or request.user.is_staff


def _count(model, field_name: str):
    """A correlated COUNT subquery (two plain Counts on different relations would multiply)."""
    return Subquery(
        model.objects.filter(**{field_name: OuterRef("pk")}).order_by().values(field_name)
        .annotate(n=Count("pk")).values("n"),
        output_field=IntegerField(),
    )


class DatasetViewSet(viewsets.ReadOnlyModelViewSet):
    """Datasets with their class and sample counts."""

    serializer_class = DatasetSerializer
    filterset_fields = {"name": ["exact"]}
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):
        # Every signed-in user may view every dataset.
        return Dataset.objects.annotate(
            category_count=_count(Category, "dataset"), sample_count=_count(Sample, "dataset")
        ).order_by("name")


class CategoryViewSet(viewsets.ReadOnlyModelViewSet):
    """Classes with the official and the revised definition."""

    serializer_class = CategorySerializer
    filterset_class = CategoryFilter
    ordering_fields = ["position", "name"]

    def get_queryset(self):
        return Category.objects.order_by("dataset_id", "position", "name")

    @extend_schema(responses={200: CategoryCountsSerializer})
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        """The class's counts as every page shows them (review.rules): reviewed, mode-2 errors and how
        many are analysed, label errors, exported and pending samples, pending per reason."""
        category = self.get_object()
        counts = category_counts(category_ids=[category.pk]).get(category.pk) or rules.ClassCounts()
        return Response(CategoryCountsSerializer(counts).data)


class SampleViewSet(viewsets.ReadOnlyModelViewSet):
    """Samples with their reasoning in every mode and their review (nested)."""

    serializer_class = SampleSerializer
    filterset_class = SampleFilter
    ordering_fields = ["external_id", "label", "id"]

    def get_queryset(self):
        # Viewing is open to every signed-in user; `can_change` tells what they may edit.
        return (
            Sample.objects.select_related("label", "review", "review__reviewer", "suspicion__suggested_category")
            .prefetch_related("reasonings")
            .order_by("label__position", "label__name", "external_id")
        )

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.request.user.is_authenticated:
            context["changeable"] = changeable_category_ids(self.request.user)
        return context


class ReviewViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Reviews. POST creates (or, with the right `version`, updates) the review of a sample; PATCH
    updates one. Reviewers may write only reviews of their assigned classes (403 otherwise); a stale
    `version` is refused with 409 and changes nothing."""

    serializer_class = ReviewSerializer
    filterset_class = ReviewFilter
    ordering_fields = ["updated_at", "id", "version"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return Review.objects.select_related("reviewer", "sample").order_by("-updated_at", "-id")

    def _save(self, *, sample: Sample, current: Review | None, data: dict) -> Review:
        def value(name, default):
            return data[name] if name in data else default

        try:
            return services.review_save(
                sample=sample,
                user=self.request.user,
                cause=value("cause", current.cause if current else ""),
                corrected_output=value("corrected_output", current.corrected_output if current else ""),
                label_error=value("label_error", current.label_error if current else False),
                suggested_label=value("suggested_label", current.suggested_label if current else None),
                note=value("note", current.note if current else ""),
                version=data["version"],
                suggestion_uncertain=value("suggestion_uncertain", current.suggestion_uncertain if current else False),
                correction_override=value("correction_override", current.correction_override if current else False),
            )
        except ApplicationError as exc:
            if exc.code == "conflict":
                # A 409 body with typed fields (current_version as a number), not stringified details.
                raise _ConflictResponse({"detail": exc.message, "code": "conflict", **exc.extra}) from exc
            raise api_error(exc) from exc

    def handle_exception(self, exc):
        if isinstance(exc, _ConflictResponse):
            return Response(exc.data, status=status.HTTP_409_CONFLICT)
        return super().handle_exception(exc)

    @extend_schema(request=ReviewWriteSerializer, responses={201: ReviewSerializer, 403: None, 409: None})
    def create(self, request, *args, **kwargs):
        write = ReviewWriteSerializer(data=request.data)
        write.is_valid(raise_exception=True)
        sample = write.validated_data.get("sample")
        if sample is None:
            raise ValidationError({"sample": "必填。"})
        current = Review.objects.filter(sample=sample).select_related("suggested_label").first()
        review = self._save(sample=sample, current=current, data=write.validated_data)
        return Response(ReviewSerializer(review).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReviewWriteSerializer, responses={200: ReviewSerializer, 403: None, 409: None})
    def partial_update(self, request, *args, **kwargs):
        current = self.get_object()
        write = ReviewWriteSerializer(data=request.data, partial=True)
        write.is_valid(raise_exception=True)
        if "version" not in write.validated_data:
            raise ValidationError({"version": "必填：你读到的版本号。"})
        review = self._save(sample=current.sample, current=current, data=write.validated_data)
        return Response(ReviewSerializer(review).data)

    def update(self, request, *args, **kwargs):
        return self.partial_update(request, *args, **kwargs)


class AssignmentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Who reviews which class. Everyone may read; only staff may assign or unassign."""

    serializer_class = AssignmentSerializer
    filterset_class = AssignmentFilter
    permission_classes = [IsStaffForWrites]
    ordering_fields = ["category", "reviewer", "assigned_at"]

    def get_queryset(self):
        return Assignment.objects.select_related("reviewer", "category", "assigned_by").order_by(
            "category__dataset_id", "category__position", "reviewer__username"
        )

    def perform_create(self, serializer):
        category = serializer.validated_data["category"]
        reviewer = serializer.validated_data["reviewer"]
        current = [a.reviewer for a in Assignment.objects.filter(category=category).select_related("reviewer")]
        try:
            services.assignment_set(category=category, reviewers=current + [reviewer], assigned_by=self.request.user)
        except ApplicationError as exc:
            raise api_error(exc) from exc
        serializer.instance = self.get_queryset().get(category=category, reviewer=reviewer)

    def perform_destroy(self, instance):
        current = [
            a.reviewer
            for a in Assignment.objects.filter(category=instance.category).exclude(pk=instance.pk).select_related("reviewer")
        ]
        try:
            services.assignment_set(category=instance.category, reviewers=current, assigned_by=self.request.user)
        except ApplicationError as exc:
            raise api_error(exc) from exc


class ExportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Training-set exports. Staff see and create all; others see only their own (none can create)."""

    serializer_class = ExportSerializer
    filterset_class = ExportFilter
    permission_classes = [IsStaffForWrites]
    ordering_fields = ["created_at", "id", "row_count"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no real user
            return Export.objects.none()
        return visible_exports(user=self.request.user)

    @extend_schema(request=ExportCreateSerializer, responses={201: ExportSerializer, 403: None})
    def create(self, request, *args, **kwargs):
        data = ExportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            export = trainset_export(
                dataset=data.validated_data["dataset"], fmt=data.validated_data["format"], user=request.user
            )
        except ApplicationError as exc:
            raise api_error(exc) from exc
        return Response(ExportSerializer(export).data, status=status.HTTP_201_CREATED)



class ApiDocsView(SpectacularSwaggerSplitView):
    """Swagger UI from drf-spectacular-sidecar's local assets; the init script comes from a URL
    and the page has no inline style, so it works under the production CSP."""

    template_name = "review/api_docs.html"
    title = "datafix API"
