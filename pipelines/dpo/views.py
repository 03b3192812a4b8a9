"""Pages of the DPO area: jobs, the start form with its preview, the job report, pair review, export.

Permissions: every signed-in user may look at everything and review pairs (pairs belong to no
category, so category assignments do not apply); previews, starting jobs and exports are for staff.
"""
from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import ApplicationError, http_status
from core.htmx import htmx_partial, render_page
from core.permissions import staff_required

from ..models import Export, Job, JobKind, PreferencePair
from . import checks, params, selectors, services
from .forms import ExportForm, PairFilterForm, PairReviewForm, StartForm
from .pairs import job_context, preview
from .sources import prompt_source, read_import, source_labels

PAGE_SIZE = 50


def _job_or_404(job_id: int) -> Job:
    return get_object_or_404(Job.objects.select_related("created_by"), pk=job_id, kind=JobKind.DPO)


def _pair_or_404(job: Job, pair_id: int) -> PreferencePair:
    # 404 for a pair of another job: the URL's parent must be the pair's job.
    return get_object_or_404(PreferencePair.objects.select_related("decided_by"), pk=pair_id, job=job)


# --------------------------------------------------------------------------- jobs
@require_GET
@login_required
def job_list(request):
    """DPO jobs with their pair counts; staff get the link to start one."""
    jobs = list(selectors.dpo_jobs()[:100])
    labels = source_labels()
    for job in jobs:
        job.source_label = labels.get((job.params.get("source") or {}).get("name"), "")
        job.strategy_label = params.STRATEGIES.get((job.params.get("strategy") or {}).get("name"), "")
    return render(request, "pipelines/dpo_jobs.html", {"jobs": jobs})


def _form_context(request, values: dict | None = None, **extra) -> dict:
    values = values or {}
    # The review app's training-set source picks a dataset (the form's source_dataset field).
    trainset = prompt_source("classification")
    return {
        "sources": source_labels(),
        "strategies": params.STRATEGIES,
        "sampling_modes": params.SAMPLING_MODES,
        "datasets": trainset.choices() if trainset is not None else [],
        "values": {
            "source": "feedback", "strategy": "model", "base_url": settings.OPENAI_BASE_URL,
            "model": params.DEFAULT_MODEL, "template": params.DEFAULT_TEMPLATE, "mode": "greedy",
            "n": "1", "preview_n": str(params.PREVIEW_DEFAULT), **values,
        },
        "max_candidates": params.MAX_CANDIDATES,
        **extra,
    }


@require_http_methods(["GET", "POST"])
@staff_required
def job_new(request):
    """The start form (staff). POST runs the preview on the first N prompts and shows it under the form."""
    if request.method == "GET":
        return render(request, "pipelines/dpo_new.html", _form_context(request))
    values = request.POST.dict()
    form = StartForm(request.POST, request.FILES)
    try:
        job_params = form.params()
        values["source_path"] = job_params["source"].get("path", "")
        shown = preview(job_params, n=form.preview_count())
        file_errors = read_import(job_params["source"]["path"])[1] if job_params["source"].get("path") else ()
    except (ApplicationError, ValueError) as exc:
        context = _form_context(request, values, error=getattr(exc, "message", str(exc)))
        return render_page(request, "pipelines/dpo_new.html", "preview", context, status=400)
    context = _form_context(request, values, shown=shown, file_errors=file_errors[:20], file_error_count=len(file_errors))
    return render_page(request, "pipelines/dpo_new.html", "preview", context)


@require_POST
@staff_required
def job_start(request):
    """Start the full job with exactly the parameters that were previewed (staff)."""
    from ..jobs.services import job_create

    try:
        job = job_create(kind=JobKind.DPO, params=StartForm(request.POST, request.FILES).params(), user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return render(request, "pipelines/dpo_new.html", _form_context(request, request.POST.dict(), error=exc.message), status=400)
    messages.success(request, f"DPO 任务 #{job.pk} 已创建，共 {job.items_total} 个 prompt。")
    return redirect("dpo:job", job.pk)


@require_GET
@login_required
def job_detail(request, job_id: int):
    """The job report: ranked issues, the plain-language diagnosis, what produced the rejects, export."""
    job = _job_or_404(job_id)
    report = selectors.job_report(job)
    exports = list(Export.objects.filter(kind="dpo", params__job_id=job.pk).order_by("-created_at")[:10]) if request.user.is_staff else []
    context = {
        "job": job,
        "report": report,
        "issue_names": checks.ISSUE_LABELS,
        "export_formats": services.EXPORT_FORMATS,
        "exports": exports,
    }
    if htmx_partial(request) and request.GET.get("partial") == "status":
        response = render(request, "pipelines/dpo_job.html#job-status", context)
        if not job.is_active:
            # The job just ended: reload the whole page so the report shows the final checks.
            response["HX-Refresh"] = "true"
        return response
    return render(request, "pipelines/dpo_job.html", context)


# --------------------------------------------------------------------------- pairs
def _query(filters: dict) -> str:
    kept = {k: v for k, v in filters.items() if v}
    return f"?{urlencode(kept)}" if kept else ""


@require_GET
@login_required
def pair_list(request, job_id: int):
    """The pairs of a job, filtered by issue and decision, a page at a time."""
    job = _job_or_404(job_id)
    filters = PairFilterForm(request.GET).filters()
    page = Paginator(selectors.job_pairs(job=job, **filters), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "job": job, "page": page, "filters": filters, "query": _query(filters),
        "issue_labels": checks.ISSUE_LABELS, "decisions": list(selectors.DECISION_LABELS.items()),
    }
    return render(request, "pipelines/dpo_pairs.html", context)


def _neighbours(job: Job, pair: PreferencePair, filters: dict) -> tuple[int | None, int | None]:
    rows = selectors.job_pairs(job=job, **filters)
    previous = rows.filter(id__lt=pair.pk).order_by("-id").values_list("id", flat=True).first()
    following = rows.filter(id__gt=pair.pk).order_by("id").values_list("id", flat=True).first()
    return previous, following


def _review_context(job: Job, pair: PreferencePair, filters: dict, **extra) -> dict:
    previous, following = _neighbours(job, pair, filters)
    return {
        "job": job, "pair": pair, "filters": filters, "query": _query(filters),
        "previous_id": previous, "next_id": following,
        "check_rows": [
            {"name": name, "title": checks.CHECK_TITLES[name], "label": label, "failed": name in pair.issues}
            for name, label in checks.ISSUE_LABELS.items()
        ],
        "metrics": pair.metrics or {},
        "context": job_context(job.params),
        **extra,
    }


def _pair_url(job: Job, pair_id: int, filters: dict) -> str:
    return reverse("dpo:pair", args=[job.pk, pair_id]) + _query(filters)


def _render_pair(request, context: dict, *, status: int = 200, push_url: str | None = None):
    """The review page, or only its #pair-page part for htmx (with the address bar following along)."""
    return render_page(request, "pipelines/dpo_review.html", "pair-page", context, status=status, push_url=push_url)


@require_GET
@login_required
def pair_review_page(request, job_id: int, pair_id: int):
    """Prompt, chosen and rejected side by side with the check results, and the reviewer's actions."""
    job = _job_or_404(job_id)
    pair = _pair_or_404(job, pair_id)
    return _render_pair(request, _review_context(job, pair, PairFilterForm(request.GET).filters()))


def _outcome(pair: PreferencePair, action: str) -> str:
    """What was saved, for the notice: "已丢弃 feedback:3", with the re-run checks after a swap or an edit."""
    text = f"{services.REVIEW_DONE[action]} {pair.key}"
    if action in ("swap", "edit"):
        text += f"（重新检查：{'、'.join(pair.issues) if pair.issues else '全部通过'}）"
    return text


@require_POST
@login_required
def pair_review_action(request, job_id: int, pair_id: int):
    """Accept, swap, edit or discard a pair and show the next one; reset stays. 409 on a version conflict."""
    job = _job_or_404(job_id)
    pair = _pair_or_404(job, pair_id)
    form = PairReviewForm(request.POST)
    filters = form.filters()
    try:
        decision = form.decision()
        action = decision["action"]
        pair = services.pair_review(pair=pair, user=request.user, **decision)
    except ApplicationError as exc:
        status = http_status(exc)
        pair.refresh_from_db()
        return _render_pair(request, _review_context(job, pair, filters, error=exc.message), status=status)
    # As on the classification page: a decision moves on to the next pair of the list being reviewed.
    _previous, following = _neighbours(job, pair, filters)
    if action in services.DECIDING_ACTIONS and following:
        target, notice = following, f"{_outcome(pair, action)}，已进入下一条。"
    elif action in services.DECIDING_ACTIONS:
        target, notice = pair.pk, f"{_outcome(pair, action)}。这是列表的最后一条。"
    else:
        target, notice = pair.pk, f"{_outcome(pair, action)}。"
    url = _pair_url(job, target, filters)
    if not htmx_partial(request):
        messages.success(request, notice)  # shown after the redirect
        return redirect(url)
    shown = pair if target == pair.pk else _pair_or_404(job, target)
    return _render_pair(request, _review_context(job, shown, filters, saved=notice), push_url=url)


# --------------------------------------------------------------------------- export
@require_POST
@staff_required
def export_create(request, job_id: int):
    """Export the job's pairs in one preference format through the dataset builder (staff)."""
    job = _job_or_404(job_id)
    try:
        export = services.pairs_export(job=job, user=request.user, **ExportForm(request.POST).options())
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        counts = export.report.get("pairs", {})
        messages.success(
            request,
            f"已导出 {export.row_count} 条（丢弃 {counts.get('discarded', 0)} 条，"
            f"未审核且有问题 {counts.get('flagged_pending', 0)} 条未导出）。",
        )
    return redirect("dpo:job", job.pk)
