"""Pages of the generation area: runs, failure analysis, failed-example review, re-run and export.

Permissions: every signed-in user may look at everything and overrule the judge on failed
examples (generated examples belong to no category, so category assignments do not apply);
starting runs, re-running failed items and exporting are for staff.
"""
from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from core.errors import ApplicationError, http_status
from core.htmx import htmx_partial, render_page
from core.permissions import staff_required
from core.uploads import upload_check

from ..models import Export, GeneratedExample, Job, JobKind, ReviewDecision, SourceItem
from . import selectors, services
from .forms import DECISION_FILTERS, DecideForm, ImportSourcesForm, QueueForm, RerunForm, StartForm
from .judge import CRITERIA
from .params import DEFAULT_PARAMS
from .run_files import example_record, pipeline_report
from .selectors import failed_examples, failed_reason_counts, generation_runs, run_analysis
from .sources import resolve_image
from .structure import TAGS, response_part

def _run_or_404(job_id: int) -> Job:
    return get_object_or_404(Job.objects.select_related("created_by", "parent"), pk=job_id, kind=JobKind.GENERATION)


# --------------------------------------------------------------------------- runs
@require_GET
@login_required
def runs(request):
    """Generation runs (with re-run counts) and, for staff, the form that starts one."""
    run_list = list(generation_runs()[:100])
    collections = list(
        SourceItem.objects.values("collection").annotate(count=Count("id")).order_by("collection")
    )
    context = {
        "runs": run_list,
        "collections": collections,
        "defaults": DEFAULT_PARAMS,
        "any_active": any(r.is_active for r in run_list),
    }
    if htmx_partial(request) and request.GET.get("partial") == "runs-table":
        return render(request, "pipelines/generation_runs.html#runs-table", context)
    return render(request, "pipelines/generation_runs.html", context)


@require_POST
@staff_required
def start(request):
    """Start a generation run over a source collection (staff)."""
    from ..jobs.services import job_create

    try:
        job = job_create(kind=JobKind.GENERATION, params=StartForm(request.POST).params(), user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("generation:runs")
    messages.success(request, f"已启动生成任务 #{job.pk}")
    return redirect("generation:analysis", job_id=job.pk)


PROBLEMS_SHOWN = 20


@require_POST
@staff_required
def import_sources(request):
    """Import source items from an uploaded JSON/JSONL file (staff); bad lines are listed."""
    form = ImportSourcesForm(request.POST, request.FILES)
    form.is_valid()  # every field is optional: the checks below say what is wrong
    data = form.cleaned_data
    try:
        upload = upload_check(data.get("file"))
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("generation:runs")
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        messages.error(request, "文件不是 UTF-8 文本")
        return redirect("generation:runs")
    collection = data.get("collection", "") or upload.name
    sample = data.get("sample", "")
    try:
        report = services.source_items_import(
            text=text, collection=collection[:200], sample=int(sample) if sample else None,
        )
    except (ApplicationError, ValueError) as exc:
        messages.error(request, getattr(exc, "message", "样本数必须是整数"))
        return redirect("generation:runs")
    messages.success(request, f"集合 {report.collection}：新增 {report.created}，更新 {report.updated}，问题 {len(report.problems)} 行")
    for problem in report.problems[:PROBLEMS_SHOWN]:
        messages.warning(request, f"{upload.name} {problem}")
    if len(report.problems) > PROBLEMS_SHOWN:
        messages.warning(request, f"另有 {len(report.problems) - PROBLEMS_SHOWN} 行问题未列出")
    return redirect("generation:runs")


# --------------------------------------------------------------------------- failure analysis
def _chart_data(analysis: dict) -> dict:
    """Only what the charts need, as plain JSON (rendered through json_script)."""
    return {
        "reasons": {
            "labels": [r["reason"] for r in analysis["failure_reasons"]],
            "counts": [r["count"] for r in analysis["failure_reasons"]],
        },
        "histogram": {
            "labels": [b["bin"] for b in analysis["score_histogram"]],
            "passed": [b["passed"] for b in analysis["score_histogram"]],
            "failed": [b["failed"] for b in analysis["score_histogram"]],
        },
        "question_type": {
            "labels": ["选择题" if r["value"] == "multiple_choice" else "开放题" for r in analysis["by_question_type"]],
            "pass_rate": [round((r["pass_rate"] or 0) * 100, 1) for r in analysis["by_question_type"]],
            "totals": [r["total"] for r in analysis["by_question_type"]],
        },
        "attributes": {
            name: {
                "labels": [r["value"] for r in rows],
                "pass_rate": [round((r["pass_rate"] or 0) * 100, 1) for r in rows],
                "totals": [r["total"] for r in rows],
            }
            for name, rows in analysis["by_attribute"].items()
        },
    }


COMPARISON_LABELS = (
    ("avg_response_length", "回答平均长度（字）"),
    ("avg_question_length", "问题平均长度（字）"),
    ("avg_look_length", "<look> 平均长度"),
    ("avg_think_length", "<think> 平均长度"),
    ("avg_answer_length", "<answer> 平均长度"),
    ("complete_structure_rate", "结构完整比例"),
    ("avg_score", "平均得分"),
)


@require_GET
@login_required
def analysis(request, job_id: int):
    """Failure analysis of one run: totals, charts, comparison, examples, judge-vs-human, re-runs."""
    job = _run_or_404(job_id)
    result = run_analysis(job)
    comparison = [
        (label, result["comparison"]["passed"][key], result["comparison"]["failed"][key], key.endswith("_rate"))
        for key, label in COMPARISON_LABELS
    ]
    exports = list(Export.objects.filter(kind="generation", params__job=job.pk).select_related("created_by")[:10])
    for record in exports:
        record.provenance_labels = [
            (selectors.PROVENANCE_LABELS.get(name, name), count)
            for name, count in (record.report.get("provenance") or {}).items()
        ]
    context = {
        "job": job,
        "analysis": result,
        "chart_data": _chart_data(result),
        "comparison": comparison,
        "reruns": selectors.rerun_comparison(job) if job.parent_id is None else [],
        "exports": exports,
        "rerun_settings": [
            ("temperature", "temperature", job.params.get("temperature")),
            ("multiple_choice_ratio", "选择题比例", job.params.get("multiple_choice_ratio")),
            ("pass_threshold", "通过阈值", job.params.get("pass_threshold")),
        ],
        "training_count": selectors.training_example_count(job) if job.parent_id is None else 0,
    }
    if htmx_partial(request) and request.GET.get("partial") == "run-status":
        response = render(request, "pipelines/generation_analysis.html#run-status", context)
        if not job.is_active:
            response["HX-Refresh"] = "true"  # finished: reload once so the charts show every example
        return response
    return render(request, "pipelines/generation_analysis.html", context)


TEAM_FILES = ("generated_examples.jsonl", "failed_examples.jsonl", "pipeline_report.json")


@require_GET
@login_required
def team_file(request, job_id: int, name: str):
    """The run's files in the team's format, built from the rows on request."""
    job = _run_or_404(job_id)
    if name not in TEAM_FILES:
        raise Http404
    if name == "pipeline_report.json":
        body = json.dumps(pipeline_report(job), ensure_ascii=False, indent=2) + "\n"
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
    else:
        passed = name == "generated_examples.jsonl"
        examples = GeneratedExample.objects.filter(job=job, passed=passed).select_related("source_item").order_by("id")
        # Streamed: a large run's file never sits in memory whole.
        lines = (json.dumps(example_record(e), ensure_ascii=False) + "\n"
                 for e in examples.iterator(chunk_size=1000))
        response = StreamingHttpResponse(lines, content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="run{job.pk}_{name}"'
    return response


# --------------------------------------------------------------------------- failed-example review
def _review_context(job: Job, queue: QueueForm, *, page_number, error: str = "") -> dict:
    reason, status = queue.queue()
    qs = failed_examples(job, reason=reason)
    if status == "pending":
        qs = qs.filter(decision=ReviewDecision.PENDING)
    elif status == "decided":
        qs = qs.exclude(decision=ReviewDecision.PENDING)
    paginator = Paginator(qs, 1)
    page = paginator.get_page(page_number)
    example = page.object_list[0] if paginator.count else None
    return {
        "job": job,
        "reason": reason,
        "status": status,
        "status_filters": DECISION_FILTERS,
        "reasons": failed_reason_counts(job),
        "page": page,
        "paginator": paginator,
        "example": example,
        "criteria": [(label, (example.validation_result.get("scores") or {}).get(key)) for key, label in CRITERIA.items()]
        if example else [],
        "parts": [(tag, response_part(example.response, tag)) for tag in TAGS] if example else [],
        "image_available": bool(example and resolve_image(example.source_item.image)),
        "error": error,
    }


@require_GET
@login_required
def failed(request, job_id: int):
    """Page through a run's failed examples, one at a time, filtered by reason and review status."""
    job = _run_or_404(job_id)
    context = _review_context(job, QueueForm(request.GET), page_number=request.GET.get("page"))
    return render_page(request, "pipelines/generation_review.html", "review-card", context)


@require_POST
@login_required
def decide(request, job_id: int, example_id: int):
    """Overrule (accept / accept edited) or confirm (reject) the judge on one failed example."""
    job = _run_or_404(job_id)
    example = get_object_or_404(GeneratedExample, pk=example_id, job=job)
    form = DecideForm(request.POST)
    page_number = (form.cleaned_data.get("page") if form.is_valid() else "") or 1
    try:
        services.generated_example_decide(example=example, user=request.user, **form.decide_args())
    except ApplicationError as exc:
        status = http_status(exc)
        # 422 rather than 400: django-htmx's DEBUG helper replaces the whole page on a 400.
        status = 422 if status == 400 else status
        # Show the same example again (fresh from the database) with the error.
        context = _review_context(job, form, page_number=page_number, error=exc.message)
        if not htmx_partial(request):
            messages.error(request, exc.message)
            return redirect(_review_url(job, form.cleaned_data, page_number))
        return render(request, "pipelines/generation_review.html#review-card", context, status=status)
    if not htmx_partial(request):
        messages.success(request, "已保存")
        return redirect(_review_url(job, form.cleaned_data, page_number))
    # With the pending filter the decided example leaves the list: the same page shows the next one.
    context = _review_context(job, form, page_number=page_number)
    return render(request, "pipelines/generation_review.html#review-card", context)


def _review_url(job: Job, data, page) -> str:
    from urllib.parse import urlencode

    query = {k: v for k, v in (("reason", data.get("reason", "")), ("status", data.get("status", "")), ("page", page)) if v}
    return reverse("generation:failed", args=[job.pk]) + ("?" + urlencode(query) if query else "")


@require_GET
@login_required
def example_image(request, job_id: int, example_id: int):
    """The source image of an example, if it is a checked image inside MEDIA_ROOT."""
    from core.images import inspect_image

    job = _run_or_404(job_id)
    example = get_object_or_404(GeneratedExample.objects.select_related("source_item"), pk=example_id, job=job)
    path = resolve_image(example.source_item.image)
    if path is None:
        raise Http404("图片不可用")
    try:
        check = inspect_image(path)
    except ApplicationError:
        raise Http404("图片不可用") from None
    response = FileResponse(open(path, "rb"), content_type=check.content_type)
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --------------------------------------------------------------------------- re-run and export
@require_POST
@staff_required
def rerun(request, job_id: int):
    """Re-run the run's undecided failed items with a changed setting (staff)."""
    job = _run_or_404(job_id)
    try:
        child = services.generation_rerun_failed(job=job, user=request.user, changes=RerunForm(request.POST).changes())
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"已启动重跑任务 #{child.pk}（{child.items_total or len(child.params['source_ids'])} 项）")
    return redirect("generation:analysis", job_id=job.pk)


@require_POST
@staff_required
def export(request, job_id: int):
    """Export passed + rescued examples (sharegpt with images, OpenAI messages) (staff)."""
    job = _run_or_404(job_id)
    try:
        record = services.generation_export(job=job, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"已导出 {record.row_count} 条样本")
    return redirect("generation:analysis", job_id=job.pk)
