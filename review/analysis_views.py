"""Pages of the analysis area: dataset overview, per-class analysis, confusion table, Markdown
downloads, revised definitions and training-set exports.

Who may do what: every signed-in user may view the analysis and download 分类分析.md,
trainset_error.md and the mode-2 error list as CSV (they show only what reviewers may already view); revising a definition and
exporting the training set are staff-only (403 for others).
"""
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from core.permissions import staff_required

from . import analysis, definitions, exports, rules
from core.errors import ApplicationError
from .forms import ConfusionForm, DefinitionForm, TrainsetExportForm
from .models import Category, Dataset, Mode


def _markdown_response(chunks, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse((c.encode("utf-8") for c in chunks), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{_quote(filename)}"
    return response


def _quote(filename: str) -> str:
    from urllib.parse import quote

    return quote(filename)


def rerun_url(category: Category, mode: int) -> str:
    """The jobs area's form that re-runs mode `mode` on the class's wrong samples."""
    try:
        return reverse("jobs:rerun_wrong", args=[category.pk]) + "?" + urlencode({"mode": mode})
    except NoReverseMatch:
        # Link target kept stable in case the jobs area's URL is not mounted (see docs/analysis.md).
        return f"/jobs/rerun-wrong/{category.pk}/?mode={mode}"


@require_GET
@login_required
def analysis_home(request):
    datasets = list(Dataset.objects.all())
    if len(datasets) == 1:
        return redirect("analysis:overview", dataset_id=datasets[0].pk)
    return render(request, "review/analysis_home.html", {"datasets": datasets})


@require_GET
@login_required
def overview(request, dataset_id: int):
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    data = analysis.dataset_overview(dataset=dataset)
    chart = {
        "labels": [c.category.name for c in data.classes],
        "datasets": [
            {"label": Mode(m).label, "data": [c.mode(m).accuracy_percent for c in data.classes]}
            for m in analysis.MODES
        ],
    }
    return render(request, "review/analysis_overview.html", {
        "dataset": dataset,
        "overview": data,
        "modes": [data.total(m) for m in analysis.MODES],
        "chart": chart,
        "formats": exports.FORMAT_LABELS,
        "datasets": Dataset.objects.exclude(pk=dataset.pk),
    })


@require_GET
@login_required
def class_detail(request, dataset_id: int, category_id: int):
    category = get_object_or_404(Category.objects.select_related("dataset"), pk=category_id, dataset_id=dataset_id)
    data = analysis.class_analysis(category=category)
    return render(request, "review/analysis_class.html", {
        "dataset": category.dataset,
        "category": category,
        "a": data,
        "modes": [data.mode(m) for m in analysis.MODES],
        "predicted_rows": [(name, [counts.get(m, 0) for m in analysis.MODES]) for name, counts in data.predicted.items()],
        "predicted_as_this_rows": [
            (name, [counts.get(m, 0) for m in analysis.MODES]) for name, counts in data.predicted_as_this.items()
        ],
        "rerun_links": [(m, rerun_url(category, m)) for m in analysis.MODES],
        "length_limit": rules.length_limit(),
    })


@require_GET
@login_required
def confusion(request, dataset_id: int):
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    mode = ConfusionForm(request.GET).mode_value()
    table = analysis.confusion_table(dataset=dataset, mode=mode)
    return render(request, "review/analysis_confusion.html", {
        "dataset": dataset, "table": table, "rows": list(zip(table.categories, table.rows)),
        "mode_choices": [(m, Mode(m).label) for m in analysis.MODES],
    })


@require_GET
@login_required
def dataset_markdown(request, dataset_id: int):
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    return _markdown_response(exports.dataset_analysis_markdown(dataset=dataset), "分类分析.md")


@require_GET
@login_required
def class_markdown(request, dataset_id: int, category_id: int):
    category = get_object_or_404(Category.objects.select_related("dataset"), pk=category_id, dataset_id=dataset_id)
    return _markdown_response(exports.class_analysis_markdown(category=category), f"分类分析-{category.name}.md")


@require_GET
@login_required
def trainset_error(request, dataset_id: int):
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    return _markdown_response(exports.trainset_error_markdown(dataset=dataset), "trainset_error.md")


@require_GET
@login_required
def mode2_errors_csv(request, dataset_id: int):
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    response = StreamingHttpResponse((line.encode("utf-8") for line in exports.mode2_errors_csv(dataset=dataset)),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{_quote(f'模式2错误-{dataset.name}.csv')}"
    return response


@require_POST
@staff_required
def definition_revise(request, dataset_id: int, category_id: int):
    category = get_object_or_404(Category.objects.select_related("dataset"), pk=category_id, dataset_id=dataset_id)
    error = ""
    try:
        revision = definitions.definition_revise(category=category, text=DefinitionForm(request.POST).typed_text(),
                                                 author=request.user)
    except ApplicationError as exc:
        error = exc.message
    else:
        if not request.htmx:
            messages.success(request, f"已保存修订定义（版本 {revision.version}）。")
    if request.htmx:
        return render(request, "review/analysis_class.html#definition", {
            "category": category, "dataset": category.dataset, "definition_error": error,
            "a": {"revisions": definitions.definition_history(category=category)},
        })  # 200 even with an error: htmx swaps only 2xx responses, and the message is in the partial
    if error:
        messages.error(request, error)
    return redirect("analysis:class", dataset_id=dataset_id, category_id=category_id)


@require_POST
@staff_required
def export_create(request, dataset_id: int):
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    try:
        export = exports.trainset_export(dataset=dataset, fmt=TrainsetExportForm(request.POST).fmt(), user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("analysis:overview", dataset_id=dataset_id)
    messages.success(request, f"已导出 {export.row_count} 条。")
    return redirect("analysis:export_detail", export_id=export.pk)


@require_GET
@staff_required
def export_list(request):
    return render(request, "review/export_list.html", {
        "exports": exports.visible_exports(user=request.user).filter(kind=exports.EXPORT_KIND)[:200],
    })


@require_GET
@staff_required
def export_detail(request, export_id: int):
    export = get_object_or_404(exports.visible_exports(user=request.user), pk=export_id)
    report = export.report or {}
    return render(request, "review/export_detail.html", {
        "export": export,
        "report": report,
        "pending_reasons": [
            (exports.PENDING_REASONS.get(k, k), n) for k, n in (report.get("pending_by_reason") or {}).items()
        ],
        "dataset": Dataset.objects.filter(pk=(export.params or {}).get("dataset_id")).first(),
        "dataset_info_json": json.dumps(report["dataset_info"], ensure_ascii=False, indent=2)
        if report.get("dataset_info") else "",
    })


@require_GET
@login_required
def export_download(request, export_id: int):
    """The training file of a training-set export (the same rule as `exports:file`)."""
    export = get_object_or_404(exports.visible_exports(user=request.user), pk=export_id)
    try:
        path = exports.export_file_path(export)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    return redirect("exports:file", export_id=export.pk, name=path.name)
