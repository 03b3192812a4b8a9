"""Django admin for the review data (the product's own pages are the main UI)."""
from django.contrib import admin

from .models import Assignment, Category, Dataset, DefinitionRevision, Reasoning, Review, ReviewEdit, Sample


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "dataset", "position")
    list_filter = ("dataset",)
    search_fields = ("name", "definition")


@admin.register(DefinitionRevision)
class DefinitionRevisionAdmin(admin.ModelAdmin):
    list_display = ("category", "version", "author", "created_at")
    list_select_related = ("category", "author")


class ReasoningInline(admin.TabularInline):
    model = Reasoning
    extra = 0
    fields = ("mode", "predicted_name", "is_correct", "length", "model_name", "output")
    readonly_fields = fields
    can_delete = False


@admin.register(Sample)
class SampleAdmin(admin.ModelAdmin):
    list_display = ("external_id", "label", "dataset", "updated_at")
    list_filter = ("dataset", "label")
    list_select_related = ("label", "dataset")
    search_fields = ("external_id",)
    raw_id_fields = ("label",)
    inlines = [ReasoningInline]


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("sample", "reviewer", "cause", "label_error", "version", "updated_at")
    list_filter = ("cause", "label_error")
    list_select_related = ("sample", "reviewer")
    raw_id_fields = ("sample", "suggested_label")
    search_fields = ("sample__external_id",)


@admin.register(ReviewEdit)
class ReviewEditAdmin(admin.ModelAdmin):
    list_display = ("review", "version", "editor", "created_at")
    list_select_related = ("review__sample", "editor")
    raw_id_fields = ("review", "restored_from")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("reviewer", "category", "assigned_by", "assigned_at")
    list_filter = ("category__dataset", "reviewer")
    list_select_related = ("reviewer", "category", "assigned_by")
