"""django-filter FilterSets for the API. Every filter is named here: query parameters that are not
listed (e.g. `?user__password__startswith=`) are ignored, never turned into lookups."""
import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from django.db.models import Exists, OuterRef
from django_filters import rest_framework as filters

from pipelines.models import Export

from .models import Assignment, Category, Cause, Mode, Reasoning, Review, Sample


class CategoryFilter(filters.FilterSet):
    class Meta:
        model = Category
        fields = {"dataset": ["exact"], "name": ["exact"]}


class SampleFilter(filters.FilterSet):
    category = django_filters.NumberFilter(field_name="label_id")
    cause = django_filters.ChoiceFilter(field_name="review__cause", choices=Cause.choices)
    label_error = django_filters.BooleanFilter(field_name="review__label_error")
    reviewed = django_filters.BooleanFilter(method="filter_reviewed", label="has a review")
    wrong_in_mode = django_filters.TypedChoiceFilter(
        method="filter_wrong_in_mode", choices=Mode.choices, coerce=int, label="mode whose answer was not correct"
    )

    class Meta:
        model = Sample
        fields = {"dataset": ["exact"], "label": ["exact"], "external_id": ["exact", "startswith"]}

    def filter_reviewed(self, queryset, name, value):
        return queryset.filter(review__isnull=not value)

    @extend_schema_field(OpenApiTypes.INT)
    def filter_wrong_in_mode(self, queryset, name, value):
        # Wrong or unparseable (not correct) in that mode.
        not_correct = Reasoning.objects.filter(sample=OuterRef("pk"), mode=value).exclude(is_correct=True)
        return queryset.filter(Exists(not_correct))


class ReviewFilter(filters.FilterSet):
    dataset = django_filters.NumberFilter(field_name="sample__dataset_id")
    category = django_filters.NumberFilter(field_name="sample__label_id")

    class Meta:
        model = Review
        fields = {"sample": ["exact"], "cause": ["exact"], "label_error": ["exact"], "reviewer": ["exact"]}


class AssignmentFilter(filters.FilterSet):
    dataset = django_filters.NumberFilter(field_name="category__dataset_id")

    class Meta:
        model = Assignment
        fields = {"reviewer": ["exact"], "category": ["exact"]}


class ExportFilter(filters.FilterSet):
    class Meta:
        model = Export
        fields = {"kind": ["exact"], "format": ["exact"]}
