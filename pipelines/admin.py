"""Django admin for jobs and prompt templates (read-mostly; jobs are changed through the job pages)."""
from django.contrib import admin

from .models import Job, JobItem, PromptTemplate


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "items_done", "items_failed", "items_total", "created_by", "created_at")
    list_filter = ("kind", "status")
    readonly_fields = ("lease_token", "heartbeat_at", "deliveries", "started_at", "finished_at", "created_at")
    raw_id_fields = ("parent", "created_by")


@admin.register(JobItem)
class JobItemAdmin(admin.ModelAdmin):
    list_display = ("job", "key", "status", "attempts", "error_kind", "finished_at")
    list_filter = ("status", "error_kind")
    search_fields = ("key",)
    raw_id_fields = ("job",)


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    list_display = ("kind", "version", "note", "created_by", "created_at")
    list_filter = ("kind",)
    readonly_fields = ("created_at",)
