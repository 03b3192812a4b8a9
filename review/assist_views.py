"""Reviewer assist pages: drafted corrections (start a drafting job for a class, discard a draft) and
the label-error ranking across a dataset (page and CSV). Thin: the logic is in review.drafts,
review.suspicion and review.jobs.correction_drafts."""
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from config.spreadsheet import csv_lines

from . import rules
from .drafts import draft_discard, draft_for
from .forms import SuspectsForm
from core.errors import ApplicationError
from .models import Category, CorrectionDraft, Dataset, Mode, Sample
from .permissions import can_change_category, changeable_category_ids
from .suspicion import Witness, ranked_samples, threshold

SUSPECT_FILTER = "suspect"
STATUS_FOR_CODE = {"forbidden": 403, "conflict": 409, "invalid": 400}


@require_POST
@login_required
def category_draft_corrections(request, category_id: int):
    """Start a drafting job for the class's wrong or too-long mode-3 outputs (staff or its reviewer)."""
    from pipelines.jobs.services import job_create
    from pipelines.models import JobKind

    category = get_object_or_404(Category.objects.select_related("dataset"), pk=category_id)
    if not can_change_category(request.user, category):
        raise PermissionDenied("只有管理员或这个类别的审核员可以为它起草修正。")
    try:
        job = job_create(kind=JobKind.CORRECTION_DRAFT, user=request.user,
                         params={"dataset": category.dataset_id, "categories": [category.name]})
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("review:queue", category_id=category.pk)
    messages.success(request, f"已开始为 {category.name} 起草 {job.items_total} 条修正（任务 #{job.pk}）；"
                              "完成后草稿显示在各样本页，按 a 采用。")
    return redirect("jobs:detail", job.pk)


def draft_panel_context(request, sample: Sample, *, notice: str = "") -> dict:
    """What the `#correction-draft` partial shows."""
    mode3 = sample.reasonings.filter(mode=Mode.LIMITED).first()
    review = getattr(sample, "review", None)
    return {"sample": sample, "draft": draft_for(sample=sample, mode3=mode3, review=review), "draft_notice": notice,
            "can_change": can_change_category(request.user, sample.label_id), "long_limit": rules.length_limit()}


@require_POST
@login_required
def correction_draft_discard(request, draft_id: int):
    """Discard a drafted correction; the `#correction-draft` panel comes back (htmx) or the page."""
    draft = get_object_or_404(CorrectionDraft.objects.select_related("sample__label", "sample__dataset"), pk=draft_id)
    sample = Sample.objects.select_related("label", "dataset", "review").get(pk=draft.sample_id)
    status, notice = 200, "已丢弃这份修正草稿。"
    try:
        draft_discard(draft=draft, user=request.user)
    except ApplicationError as exc:
        status, notice = STATUS_FOR_CODE.get(exc.code, 400), exc.message
    if not request.htmx:
        (messages.success if status == 200 else messages.error)(request, notice)
        return redirect(f"{reverse('review:sample', args=[sample.pk])}?{request.GET.urlencode()}")
    return render(request, "review/sample.html#correction-draft", draft_panel_context(request, sample, notice=notice),
                  status=status)


@require_GET
@login_required
def sample_image(request, sample_id: int):
    """The sample's image by sample id (a redirect to the image itself): the sample page preloads
    the next sample's image through it, so the image is in the browser's cache when the reviewer
    gets there."""
    found = Sample.objects.filter(pk=sample_id).values_list("image", flat=True)
    if not found:
        raise Http404("样本不存在")
    if not found[0]:
        return HttpResponse(status=204)  # nothing to preload
    image = found[0]
    response = redirect("review:image", path=image)
    response["Cache-Control"] = "private, max-age=3600"
    return response


# --------------------------------------------------------------------------- the ranking, dataset-wide
def _suspects(request, dataset: Dataset, *, mine: bool):
    samples = Sample.objects.filter(dataset=dataset)
    changeable = changeable_category_ids(request.user)
    if mine and changeable is not None:
        samples = samples.filter(label_id__in=changeable)
    return (ranked_samples(samples=samples).filter(label_suspicion__gte=threshold())
            .select_related("label", "review", "review__suggested_label", "suspicion"))


def _reasons(evidence: list[dict], label_name: str) -> str:
    """The witnesses against the label, in words (for the list and the CSV)."""
    return "；".join(w.detail for w in (Witness(**data) for data in evidence) if w.category_name != label_name)


@require_GET
@login_required
def dataset_suspects(request, dataset_id: int):
    """疑似标签错误 across the dataset (the user's classes unless staff or `?all=1`), most suspect first."""
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    staff = request.user.is_staff
    mine = not staff and not SuspectsForm(request.GET).every_class()
    rows = list(_suspects(request, dataset, mine=mine)[:500])
    for row in rows:
        row.reasons = _reasons(row.suspicion.evidence, row.label.name)
        row.open_url = f"{reverse('review:sample', args=[row.pk])}?f={SUSPECT_FILTER}&s=id"
    waiting = [r for r in rows if not _has_review(r)]
    per_class: dict[int, dict] = {}
    for row in waiting:
        entry = per_class.setdefault(row.label_id, {"category": row.label, "count": 0})
        entry["count"] += 1
    return render(request, "review/suspects.html", {
        "dataset": dataset, "rows": rows, "waiting": waiting, "mine": mine, "staff": staff,
        "per_class": sorted(per_class.values(), key=lambda e: (-e["count"], e["category"].position)),
        "threshold": threshold(), "filter_key": SUSPECT_FILTER,
    })


SUSPECTS_CSV_HEADER = ("排名", "类别", "样本ID", "疑似度", "证据指向的类别", "证据", "审核", "标签错误", "建议类别")


@require_GET
@login_required
def dataset_suspects_csv(request, dataset_id: int):
    """疑似标签错误.csv: every suspected sample of the dataset with its score and reasons."""
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    rows = _suspects(request, dataset, mine=False)

    def lines():
        for rank, row in enumerate(rows.iterator(chunk_size=500), 1):
            review = row.review if _has_review(row) else None
            yield (rank, row.label.name, row.external_id, f"{row.suspicion_score:.2f}", row.suggested_name or "",
                   _reasons(row.suspicion.evidence, row.label.name), "已审核" if review else "未审核",
                   "是" if review and review.label_error else "",
                   review.suggested_label.name if review and review.suggested_label_id else "")

    response = StreamingHttpResponse((line.encode("utf-8") for line in csv_lines(SUSPECTS_CSV_HEADER, lines())),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(f'疑似标签错误-{dataset.name}.csv')}"
    return response


def _has_review(sample: Sample) -> bool:
    try:
        return sample.review is not None
    except Sample.review.RelatedObjectDoesNotExist:
        return False
