"""Job pages (signed-in users), job start forms, prompt editor and queue monitor (staff only)."""
from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.permissions import staff_required
from core.errors import ApplicationError

from ..models import ItemStatus, Job, JobKind, JobStatus, PromptTemplate
from . import monitor
from .forms import ItemFilterForm, JobFilterForm, NewJobForm, PromptForm
from .kinds import get_handler, start_url
from .leases import job_lease_alive
from .prompts import EDITABLE_KINDS, prompt_current, prompt_save_version
from .selectors import error_label, job_progress
from .services import job_cancel, job_create, job_resume, job_retry_failed
from .workers import heartbeat_seconds

FAILURES_SHOWN = 20
ITEMS_PER_PAGE = 100
JOBS_PER_PAGE = 50


def _start_kinds() -> list[tuple[str, str]]:
    """The kinds started from the generic start page (their handler has a `form_class`), with labels;
    other kinds link their own start pages."""
    return [(kind, label) for kind, label in JobKind.choices if get_handler(kind).form_class is not None]


# --------------------------------------------------------------------------- job list and detail
@require_GET
@login_required
def job_list(request):
    jobs = Job.objects.select_related("created_by").order_by("-created_at")
    kind, status = JobFilterForm(request.GET).values()
    if kind in JobKind.values:
        jobs = jobs.filter(kind=kind)
    if status in JobStatus.values:
        jobs = jobs.filter(status=status)
    page = Paginator(jobs, JOBS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "pipelines/jobs_list.html", {
        "page": page, "kind": kind, "status": status, "kinds": JobKind.choices, "statuses": JobStatus.choices,
        "start_kinds": _start_kinds(),
    })


def _detail_context(job: Job) -> dict:
    failures = list(
        job.items.filter(status=ItemStatus.FAILED).order_by("id")
        .only("id", "job_id", "key", "error_kind", "error", "attempts", "finished_at")[:FAILURES_SHOWN]
    )
    for item in failures:
        item.error_label = error_label(item.error_kind)
    progress = job_progress(job)
    # Resume: items without an outcome and nobody running them (stopped, or the worker died).
    can_resume = bool(progress.pending + progress.running) and not job_lease_alive(job)
    return {"job": job, "progress": progress, "failures": failures, "failures_shown": FAILURES_SHOWN,
            "can_resume": can_resume, "retry_repins_prompt": _retry_repins_prompt(job.kind)}


def _retry_repins_prompt(kind: str) -> bool:
    try:
        return bool(get_handler(kind).repinned_on_retry)
    except LookupError:  # a kind this version no longer knows: its page still shows
        return False


@require_GET
@login_required
def job_detail(request, job_id: int):
    job = get_object_or_404(Job.objects.select_related("created_by", "parent"), pk=job_id)
    context = _detail_context(job)
    context.update({
        "params_json": json.dumps(_visible_params(job.params), ensure_ascii=False, indent=2),
        "report_json": json.dumps(job.report or {}, ensure_ascii=False, indent=2),
        "reruns": list(job.reruns.order_by("-created_at")[:10]),
    })
    return render(request, "pipelines/job_detail.html", context)


def _visible_params(params: dict) -> dict:
    # Long id lists would drown the page; their count is what matters.
    shown = {}
    for key, value in params.items():
        if isinstance(value, list) and len(value) > 20:
            shown[key] = f"[{len(value)} 项]"
        else:
            shown[key] = value
    return shown


@require_GET
@login_required
def job_progress_partial(request, job_id: int):
    """The progress region of the job page; htmx polls it while the job is active."""
    job = get_object_or_404(Job, pk=job_id)
    response = render(request, "pipelines/job_detail.html#progress", _detail_context(job))
    if request.htmx and not job.is_active:
        # The job just ended while the page polled: reload once so the report shows too.
        response["HX-Refresh"] = "true"
    return response


@require_GET
@login_required
def job_items(request, job_id: int):
    job = get_object_or_404(Job, pk=job_id)
    status = ItemFilterForm(request.GET).value()
    items = job.items.order_by("id").only("id", "job_id", "key", "status", "attempts", "error_kind", "error", "finished_at")
    if status in ItemStatus.values:
        items = items.filter(status=status)
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    for item in page.object_list:
        item.error_label = error_label(item.error_kind) if item.error_kind else ""
    return render(request, "pipelines/job_items.html", {
        "job": job, "page": page, "status": status, "statuses": ItemStatus.choices,
    })


# --------------------------------------------------------------------------- actions (staff)
def _act(request, job_id: int, action, success: str):
    job = get_object_or_404(Job, pk=job_id)
    try:
        result = action(job)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("jobs:detail", job.pk)
    messages.success(request, success)
    return redirect("jobs:detail", result.pk)


@require_POST
@staff_required
def job_cancel_view(request, job_id: int):
    return _act(request, job_id, lambda job: job_cancel(job=job, user=request.user), "已请求取消：不再派发新的条目。")


@require_POST
@staff_required
def job_resume_view(request, job_id: int):
    return _act(request, job_id, lambda job: job_resume(job=job, user=request.user), "任务已重新排队，只运行未完成的条目。")


@require_POST
@staff_required
def job_retry_view(request, job_id: int):
    return _act(request, job_id, lambda job: job_retry_failed(job=job, user=request.user),
                "已为失败的条目创建新任务。")


# --------------------------------------------------------------------------- start forms (staff)
@require_GET
@staff_required
def job_create_dispatch(request):
    """`/jobs/new/?kind=…`: the start form for a kind, or a start page a kind declares of its own
    (`JobKindHandler.start_url`; the analysis pages link a re-run of a class's wrong samples so)."""
    kind = NewJobForm(request.GET).value()
    own_page = start_url(kind, request.GET)
    if own_page is not None:
        return redirect(own_page)
    if kind in JobKind.values and get_handler(kind).form_class is not None:
        query = request.GET.copy()
        query.pop("kind", None)
        return redirect(reverse("jobs:start", args=[kind]) + (f"?{query.urlencode()}" if query else ""))
    return render(request, "pipelines/jobs_new.html", {"start_kinds": _start_kinds()})


@require_http_methods(["GET", "POST"])
@staff_required
def job_start(request, kind: str):
    form_class = get_handler(kind).form_class if kind in JobKind.values else None
    if form_class is None:
        raise Http404("这个任务类型不能在这里启动")
    form = form_class(request.POST or None, request.FILES or None,
                      initial=request.GET.dict() if request.method == "GET" else None)
    if request.method == "POST" and form.is_valid():
        try:
            job = job_create(kind=kind, params=form.job_params(), user=request.user)
        except ApplicationError as exc:
            if hasattr(form, "discard"):
                form.discard()  # e.g. an uploaded folder no job will read
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"任务 #{job.pk} 已创建，共 {job.items_total} 个条目。")
            return redirect("jobs:detail", job.pk)
    return render(request, "pipelines/job_form.html", {"form": form, "kind": kind, "kind_label": JobKind(kind).label})


# --------------------------------------------------------------------------- prompts (staff)
@require_GET
@staff_required
def prompt_list(request):
    for kind in EDITABLE_KINDS:
        prompt_current(kind)  # seeds version 1 of the defaults on first visit
    templates = PromptTemplate.objects.select_related("created_by").order_by("kind", "-version")
    latest = {}
    for template in templates:
        latest.setdefault(template.kind, template)
    rows = [{"kind": k, "label": PromptTemplate.Kind(k).label, "latest": latest.get(k)} for k in EDITABLE_KINDS]
    return render(request, "pipelines/prompt_list.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
@staff_required
def prompt_edit(request, kind: str):
    if kind not in EDITABLE_KINDS:
        raise PermissionDenied("这个提示词不能在这里编辑")
    current = prompt_current(kind)
    form = PromptForm(request.POST or None, initial={"text": current.text})
    if request.method == "POST" and form.is_valid():
        try:
            saved = prompt_save_version(kind=kind, text=form.cleaned_data["text"], note=form.cleaned_data["note"],
                                        user=request.user)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            if saved.pk == current.pk:
                messages.info(request, "内容没有变化，未创建新版本。")
            else:
                messages.success(request, f"已保存为 v{saved.version}。之后的任务使用新版本。")
            return redirect("jobs:prompt_edit", kind)
    versions = PromptTemplate.objects.filter(kind=kind).select_related("created_by").order_by("-version")
    return render(request, "pipelines/prompt_edit.html", {
        "form": form, "kind": kind, "label": PromptTemplate.Kind(kind).label, "current": current,
        "versions": versions,
    })


# --------------------------------------------------------------------------- monitor (staff)
@require_GET
@staff_required
def monitor_page(request):
    return render(request, "pipelines/monitor.html", {"broker": monitor.broker_kind(), "lazy": True})


@require_GET
@staff_required
def monitor_panel(request):
    """The monitor's live part (queues, workers, executions, jobs, failures); htmx polls it."""
    queues, unacked = monitor.queue_lengths()
    return render(request, "pipelines/monitor.html#panel", {
        "broker": monitor.broker_kind(), "queues": queues, "unacked": unacked, "workers": monitor.workers(),
        "heartbeat_seconds": heartbeat_seconds(),
        "executions": monitor.running_executions(), "recent": monitor.recent_jobs(),
        "failed_jobs": monitor.failed_jobs(), "failed_tasks": monitor.failed_tasks(),
    })
