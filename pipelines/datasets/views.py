"""Pages of the feedback / logs / builder area, mounted at /feedback/, and the one download view of
every export, mounted at /exports/.

- feedback samples: filters (rating, model, date, decision), full text, accept / edit / reject with
  keyboard shortcuts; staff upload a feedback file to import (a "feedback_import" job);
- call logs: import jobs with their drop reasons and problem lines; staff import a folder under
  MEDIA_ROOT (a "log_extraction" job); the imported records of one job;
- the dataset builder: sources (imported logs, feedback samples, or both), options, a dry-run
  preview with per-step counts, then (staff) write the files and record an Export.

Every signed-in user may look at everything and review feedback samples (they belong to no
category); imports and writing export files are for staff. Downloads follow
`exports.visible_exports`' rule.
"""
from __future__ import annotations

import json
import mimetypes
from datetime import date
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from core.errors import ApplicationError, http_status
from core.htmx import htmx_partial, render_page
from core.permissions import staff_required
from core.uploads import upload_store

from pipelines.models import Export, FeedbackSample, Job, JobKind, LogRecord

from . import exports, selectors, services
from .builder import build_dataset
from .forms import (DECISION_FILTERS, BuilderForm, FeedbackDecideForm, FeedbackFilterForm, FeedbackImportForm,
                    LogImportForm)
from .logs import DROP_REASON_LABELS
from .options import BuildError

PAGE_SIZE = 20
BUILDER_EXPORT_KIND = "builder"


# --------------------------------------------------------------------------- feedback samples


def _filters(data) -> dict:
    """The page's filters from a query dict; invalid values are ignored, not errors."""
    form = FeedbackFilterForm(data)
    form.is_valid()
    cleaned = {k: v for k, v in form.cleaned_data.items() if k not in form.errors}
    return {
        "rating": cleaned.get("rating"),
        "model": (cleaned.get("model") or "").strip(),
        "date_from": cleaned.get("date_from"),
        "date_to": cleaned.get("date_to"),
        "decision": cleaned.get("decision") or "pending",
    }


def _filter_query(filters: dict, page: int | None = None) -> str:
    values = {
        "rating": filters["rating"] or "", "model": filters["model"],
        "date_from": filters["date_from"].isoformat() if isinstance(filters["date_from"], date) else "",
        "date_to": filters["date_to"].isoformat() if isinstance(filters["date_to"], date) else "",
        "decision": filters["decision"],
    }
    if page and page > 1:
        values["page"] = page
    return urlencode({k: v for k, v in values.items() if v not in ("", None)})


def _samples_context(request, data) -> dict:
    filters = _filters(data)
    samples = selectors.feedback_sample_list(
        rating=filters["rating"], model_name=filters["model"], date_from=filters["date_from"],
        date_to=filters["date_to"], decision="" if filters["decision"] == "all" else filters["decision"],
    )
    page = Paginator(samples, PAGE_SIZE).get_page(data.get("page"))
    return {
        "page": page,
        "samples": list(page.object_list),
        "filters": filters,
        "filter_query": _filter_query(filters, page.number),
        "filter_query_nopage": _filter_query(filters),
        "decision_filters": DECISION_FILTERS,
        "rating_choices": range(5, 0, -1),
    }


@require_GET
@login_required
def samples(request):
    """Feedback samples with filters by rating, model, date and decision; reviewers act on each."""
    context = _samples_context(request, request.GET)
    if htmx_partial(request) and request.htmx.target == "sample-list":
        return render(request, "pipelines/feedback_samples.html#sample-list", context)
    context.update(
        model_names=selectors.feedback_model_names(),
        decision_counts=selectors.feedback_decision_counts(),
        import_jobs=list(Job.objects.filter(kind=JobKind.FEEDBACK_IMPORT).select_related("created_by")[:5]),
        max_upload_mb=settings.UPLOAD_MAX_BYTES // (1024 * 1024),
    )
    return render(request, "pipelines/feedback_samples.html", context)


@require_POST
@login_required
def decide(request, sample_id: int):
    """Accept, accept with an edited output, or reject one feedback sample (version-checked)."""
    sample = get_object_or_404(FeedbackSample, pk=sample_id)
    form = FeedbackDecideForm(request.POST)
    form.is_valid()
    filters_query = form.cleaned_data.get("filters", "")
    error, status = "", 200
    try:
        sample = services.feedback_sample_decide(sample=sample, user=request.user, **form.decide_args())
    except ApplicationError as exc:
        error, status = exc.message, http_status(exc)
        sample = FeedbackSample.objects.select_related("decided_by").get(pk=sample.pk)
    if not htmx_partial(request):
        if error:
            messages.error(request, error)
        else:
            messages.success(request, "已保存")
        return redirect(reverse("feedback:samples") + (f"?{filters_query}" if filters_query else ""))
    # On an error the reviewer's edited text is offered again, not lost.
    draft = form.cleaned_data.get("edited_output", "") if error else ""
    context = {"sample": sample, "error": error, "filter_query": filters_query, "draft_output": draft}
    return render(request, "pipelines/feedback_samples.html#sample-card", context, status=status)


@require_POST
@staff_required
def import_upload(request):
    """Upload a feedback file (JSON/JSONL, size-checked) and queue its import job (staff)."""
    form = FeedbackImportForm(request.POST, request.FILES)
    form.is_valid()  # the upload is checked and stored first, then the other fields
    upload = form.cleaned_data.get("feedback_file")
    try:
        path = upload_store(upload, folder="feedback_uploads")
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("feedback:samples")
    try:
        job = services.feedback_import_job_start(feedback_file=path, user=request.user, **form.import_args())
    except ApplicationError as exc:
        path.unlink(missing_ok=True)
        messages.error(request, exc.message)
        return redirect("feedback:samples")
    messages.success(request, f"已创建导入任务 #{job.pk}（{upload.name}）")
    return redirect("feedback:samples")


# --------------------------------------------------------------------------- call logs

@require_GET
@login_required
def logs(request):
    """Log import jobs with their counts, drop reasons and problem lines; the import form (staff)."""
    jobs = list(Job.objects.filter(kind=JobKind.LOG_EXTRACTION).select_related("created_by")[:50])
    for job in jobs:
        # Chinese label next to the stable reason name, for the counters.
        job.drop_rows = [(DROP_REASON_LABELS.get(reason, reason), reason, count)
                         for reason, count in (job.report.get("dropped") or {}).items()]
    return render(request, "pipelines/logs_jobs.html", {"jobs": jobs, "media_root": settings.MEDIA_ROOT})


@require_POST
@staff_required
def logs_import(request):
    """Queue a "log_extraction" job for a folder under MEDIA_ROOT (staff)."""
    try:
        folder = LogImportForm(request.POST).folder()
        job = services.log_extraction_job_start(log_dir=folder, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("feedback:logs")
    messages.success(request, f"已创建日志导入任务 #{job.pk}")
    return redirect("feedback:logs")


@require_GET
@login_required
def log_records(request, job_id: int):
    """The records one log import job extracted, full text, paginated."""
    job = get_object_or_404(Job, pk=job_id, kind=JobKind.LOG_EXTRACTION)
    page = Paginator(LogRecord.objects.filter(job=job).order_by("source_file", "line_no"), PAGE_SIZE).get_page(
        request.GET.get("page"))
    return render(request, "pipelines/logs_records.html", {"job": job, "page": page, "records": list(page.object_list)})


# --------------------------------------------------------------------------- the dataset builder


@require_GET
@login_required
def builder(request):
    """The builder form; previews and writes happen through the two POST endpoints."""
    exports = list(Export.objects.filter(kind=BUILDER_EXPORT_KIND).select_related("created_by")[:10])
    return render(request, "pipelines/builder_form.html", {"form": BuilderForm(), "exports": exports})


def _builder_result(request, form: BuilderForm, *, write: bool):
    context = {"form": form}
    status = 200
    if not form.is_valid():
        context["error"] = "请修正表单中的错误"
        return context, 400
    try:
        if write:
            name = form.cleaned_data.get("name") or "dataset"
            suffix = ".jsonl" if form.cleaned_data["container"] == "jsonl" else ".json"
            export, result = exports.build_export(form.sources(), form.options(), kind=BUILDER_EXPORT_KIND,
                                                  file_name=f"{exports.safe_name(name, 'dataset')}{suffix}",
                                                  user=request.user, label=name)
            context["export"] = export
        else:
            result = build_dataset(form.sources(), form.options())
    except (BuildError, ApplicationError) as exc:
        context["error"] = getattr(exc, "message", str(exc))
        return context, 400
    source_rows = [
        {"name": name, "read": counts.get("read", 0),
         "kept": sum(v for k, v in counts.items() if k.startswith("split:"))}
        for name, counts in result.report["sources"].items()
    ]
    context.update(
        report=result.report, written=write, source_rows=source_rows,
        preview_json=[json.dumps(row, ensure_ascii=False, indent=2) for row in result.preview],
    )
    return context, status


@require_POST
@login_required
def builder_preview(request):
    """Dry run: per-step counts and the first formatted records, nothing written."""
    form = BuilderForm(request.POST)
    context, status = _builder_result(request, form, write=False)
    return render_page(request, "pipelines/builder_form.html", "builder-result", context, status=status)


@require_POST
@staff_required
def builder_write(request):
    """Write the dataset under EXPORT_ROOT/builder/ and record an Export (staff)."""
    form = BuilderForm(request.POST)
    context, status = _builder_result(request, form, write=True)
    return render_page(request, "pipelines/builder_form.html", "builder-result", context, status=status)


# --------------------------------------------------------------------------- export downloads

@require_GET
@login_required
def export_file(request, export_id: int, name: str):
    """One file of an export, under `exports.visible_exports`' rule; 404 for anything else."""
    try:
        path = exports.export_file(user=request.user, export_id=export_id, name=name)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".jsonl":
        content_type = "application/jsonl"
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name,
                        content_type=f"{content_type}; charset=utf-8" if "json" in content_type else content_type)
