"""Pages of the review flow: home, assignments, class queue, sample page, image files.

Thin: parse the request, call a selector or a service, render a page or (for htmx) its partial.
"""
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import rules, selectors
from .drafts import draft_for
from core.errors import ApplicationError
from core.htmx import render_page
from .forms import (
    ACTION_KEEP, UNCERTAIN, AssignmentForm, CorrectionCheckForm, HomeForm, QueueStateForm, RerunDecisionForm,
    ReviewForm,
)
from core.images import inspect_image, media_path
from .models import Category, Cause, Dataset, Mode, ReviewEdit, Sample
from .permissions import can_change_category, changeable_category_ids
from .selectors import QUEUE_SORTS, queue_filters
from .services import (
    assignments_set_for_dataset, correction_check, reasoning_pending_decide, review_keep, review_restore, review_save,
    reviewer_text,
)
from .suspicion import suspicion_for
from .suspicion import threshold as suspicion_threshold

QUEUE_PAGE_SIZE = 50
STATUS_FOR_CODE = {"forbidden": 403, "conflict": 409, "invalid": 400}


class CountedPaginator(Paginator):
    """A paginator told its count (from the class's counters) instead of counting the queue."""

    def __init__(self, object_list, per_page, *, count: int):
        super().__init__(object_list, per_page)
        self._known_count = count

    @property
    def count(self) -> int:
        return self._known_count


def _query(filter_key: str, sort_key: str, **extra) -> str:
    params = {"f": filter_key, "s": sort_key, **extra}
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


def sample_url(sample_id: int, filter_key: str, sort_key: str) -> str:
    """The sample page inside a queue (filter and sort travel in the query string)."""
    return f"{reverse('review:sample', args=[sample_id])}?{_query(filter_key, sort_key)}"


# --------------------------------------------------------------------------- home
@require_GET
@login_required
def home(request):
    """Reviewer: assigned classes with progress. Staff: every class and every reviewer's progress."""
    dataset = selectors.home_dataset(user=request.user, dataset_id=HomeForm(request.GET).dataset_id())
    datasets = list(Dataset.objects.all())
    if dataset is None:
        return render(request, "review/home.html", {"dataset": None, "datasets": datasets})
    progress = selectors.category_progress(dataset=dataset)
    changeable = changeable_category_ids(request.user)
    for item in progress:
        item.can_change = changeable is None or item.category.pk in changeable
    context = {
        "dataset": dataset,
        "datasets": datasets,
        "progress": progress,
        "mine": [p for p in progress if any(r.pk == request.user.pk for r in p.reviewers)],
        "reviewers": selectors.reviewer_progress(progress=progress) if request.user.is_staff else [],
        "unassigned": [p for p in progress if not p.reviewers],
    }
    return render(request, "review/home.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def assignments(request, dataset_id: int):
    """Staff: who reviews which classes of a dataset (a checkbox matrix)."""
    if not request.user.is_staff:
        raise PermissionDenied("只有管理员可以分配类别。")
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    categories, reviewers, pairs = selectors.assignment_matrix(dataset=dataset)
    nobody = []
    if request.method == "POST":
        form = AssignmentForm(request.POST, category_ids=[c.pk for c in categories])
        wanted = form.reviewer_ids_by_category()
        reviewer_ids = {r.pk for r in reviewers}
        nobody = [c for c in categories if not reviewer_ids.intersection(wanted.get(c.pk, ()))]
        if not nobody or form.confirmed():
            try:
                total = assignments_set_for_dataset(dataset=dataset, reviewer_ids_by_category=wanted,
                                                    assigned_by=request.user)
            except ApplicationError as exc:
                messages.error(request, exc.message)
            else:
                left = f"；{'、'.join(c.name for c in nobody)} 无人负责" if nobody else ""
                (messages.warning if nobody else messages.success)(request, f"已保存分配（共 {total} 项）{left}。")
            return redirect("review:assignments", dataset_id=dataset.pk)
        # Every class needs a reviewer: show what was submitted and ask before saving it.
        pairs = {(category_id, reviewer_id) for category_id, ids in wanted.items() for reviewer_id in ids}
    rows = [
        {"category": c, "cells": [{"reviewer": r, "checked": (c.pk, r.pk) in pairs} for r in reviewers],
         "unassigned": not any((c.pk, r.pk) in pairs for r in reviewers)}
        for c in categories
    ]
    return render(request, "review/assignments.html",
                  {"dataset": dataset, "reviewers": reviewers, "rows": rows, "nobody": nobody})


# --------------------------------------------------------------------------- queue
@require_GET
@login_required
def queue(request, category_id: int):
    """A class's samples with filters (counts on each), sort and pagination."""
    category = get_object_or_404(Category.objects.select_related("dataset"), pk=category_id)
    filter_key, sort_key = QueueStateForm(request.GET).state()
    counts = selectors.queue_counts(category=category)
    page = CountedPaginator(
        selectors.QueuePageRows(category=category, filter_key=filter_key, sort_key=sort_key), QUEUE_PAGE_SIZE,
        count=counts[filter_key],
    ).get_page(request.GET.get("page"))
    context = {
        "category": category,
        "dataset": category.dataset,
        "page": page,
        "filter_key": filter_key,
        "sort_key": sort_key,
        "filters": [(key, f.label, counts[key]) for key, f in queue_filters().items()],
        "suspect_filter": selectors.SUSPECT_FILTER,
        "suspicion_threshold": suspicion_threshold(),
        "sorts": [(key, label) for key, (label, _) in QUEUE_SORTS.items()],
        "queue_query": _query(filter_key, sort_key),
        "can_change": can_change_category(request.user, category),
        "long_limit": rules.length_limit(),
    }
    return render_page(request, "review/queue.html", "queue", context)


# --------------------------------------------------------------------------- sample page
def _form_values(sample: Sample, reasonings: dict[int, object], status: rules.SampleStatus) -> dict:
    """What the review form shows before the reviewer touches it."""
    review = getattr(sample, "review", None)
    mode2, mode3 = reasonings.get(Mode.WITH_DEFINITIONS), reasonings.get(Mode.LIMITED)
    suggested_name = ""
    if review and review.suggested_label_id:
        suggested_name = review.suggested_label.name
    elif review and review.suggestion_uncertain:
        suggested_name = UNCERTAIN
    elif mode2 is not None and mode2.predicted_category_id and mode2.predicted_category_id != sample.label_id:
        suggested_name = mode2.predicted_name  # mode 2's answer is the first guess
    if review:
        cause = review.cause
    else:
        cause = "" if status.mode2_error else Cause.NONE
    return {
        "cause": cause,
        "corrected_output": (review.corrected_output if review and review.corrected_output else
                             (mode3.output if mode3 else "")),
        "correction_override": bool(review and review.correction_override),
        "label_error": bool(review and review.label_error),
        "suggested_label_name": suggested_name,
        "note": review.note if review else "",
        "version": review.version if review else 0,
    }


# Labels for the fields the info-extraction job writes (review/jobs/info_extraction.py INFO_FIELDS).
IMAGE_INFO_LABELS = {"visible_text": "可见文字", "objects": "物体", "screen_elements": "界面元素", "scene": "场景", "text": "内容"}


def _image_info_rows(info) -> list[tuple[str, str]]:
    """`Sample.image_info` as (label, text) rows: known fields in Chinese, lists joined with 、,
    other values as JSON; the `_source` provenance last, as 来源."""
    import json

    if info in (None, "", {}, []):
        return []
    if not isinstance(info, dict):
        return [("内容", info if isinstance(info, str) else json.dumps(info, ensure_ascii=False))]
    rows = []
    for key, value in info.items():
        if key == "_source":
            continue
        if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
            text = "、".join(str(v) for v in value)
        elif isinstance(value, (dict, list)):
            text = json.dumps(value, ensure_ascii=False)
        else:
            text = str(value)
        rows.append((IMAGE_INFO_LABELS.get(str(key), str(key)), text))
    source = info.get("_source")
    if isinstance(source, dict):  # sorted: PostgreSQL's jsonb does not keep key order
        rows.append(("来源", "，".join(f"{k}: {v}" for k, v in sorted(source.items()) if v not in (None, ""))))
    return rows


def _versions_text(versions) -> str:
    return "，".join(f"模式{mode} v{v}" for mode, v in sorted((versions or {}).items())) or "—"


def _draft_text(provenance) -> str:
    if not provenance:
        return "—"
    return f"草稿 #{provenance['id']}（{'审核时改过' if provenance.get('edited') else '未修改'}）"


def _edit_rows(sample: Sample) -> list[dict]:
    review = getattr(sample, "review", None)
    if review is None:
        return []
    labels = {"cause": "原因", "corrected_output": "模式3 修改", "correction_override": "未通过检查仍保存",
              "label_error": "标签错误", "suggested_label_name": "建议类别", "suggestion_uncertain": "建议类别不确定",
              "note": "备注", "judged_versions": "审核的模型版本", "model_rerun": "模型新结果",
              "correction_draft": "来自修正草稿"}
    causes = dict(Cause.choices)
    rows = []
    for edit in review.edits.all():
        changes = []
        for key, label in labels.items():
            before, after = (edit.before or {}).get(key), (edit.after or {}).get(key)
            if not edit.before and not after:
                continue  # a new review: list only the fields it set
            if before != after:
                if key == "cause":
                    before, after = causes.get(before, before or "—"), causes.get(after, after or "—")
                if key in ("label_error", "correction_override", "suggestion_uncertain"):
                    before = "—" if before is None else ("是" if before else "否")
                    after = "是" if after else "否"
                if key == "judged_versions":
                    before, after = _versions_text(before), _versions_text(after)
                if key == "correction_draft":
                    before, after = _draft_text(before), _draft_text(after)
                changes.append({"field": label, "before": before, "after": after})
        rows.append({"edit": edit, "changes": changes})
    return rows


def _sample_context(request, sample_id: int, filter_key: str, sort_key: str, *, values=None, notice=None,
                    notice_kind="success") -> dict:
    sample = selectors.sample_detail(sample_id=sample_id)
    reasonings = {r.mode: r for r in sample.reasonings.all()}
    categories = selectors.dataset_categories(dataset=sample.dataset)
    position = selectors.queue_position(sample=sample, filter_key=filter_key, sort_key=sort_key)
    status = rules.loaded_sample_status(sample, reasonings)
    predicted = []
    seen = {sample.label_id}
    for reasoning in reasonings.values():
        category = reasoning.predicted_category
        if category is not None and category.pk not in seen:
            seen.add(category.pk)
            predicted.append(category)
    form_values = _form_values(sample, reasonings, status)
    if values:
        form_values.update(values)
    mode3 = reasonings.get(Mode.LIMITED)
    mode3_output = mode3.output if mode3 else ""
    draft = draft_for(sample=sample, mode3=mode3, review=getattr(sample, "review", None))
    form_values.setdefault("correction_draft", draft.draft.pk if draft and draft.in_use else "")
    shown = form_values["corrected_output"]
    check = None
    if reviewer_text(shown) and reviewer_text(shown) != reviewer_text(mode3_output):
        by_pk = {c.pk: c for c in categories}
        suggested = next((c for c in categories if c.name == form_values.get("suggested_label_name")), None)
        check = correction_check(sample=sample, text=shown, label_error=form_values["label_error"],
                                 suggested_label=suggested if suggested and suggested.pk in by_pk else None)
    return {
        "sample": sample,
        "dataset": sample.dataset,
        "review": getattr(sample, "review", None),
        "modes": [(mode, label, reasonings.get(mode)) for mode, label in Mode.choices],
        "mode3_output": mode3_output,
        "predicted_categories": predicted,
        "categories": categories,
        "uncertain": UNCERTAIN,
        "causes": [(value, label, key) for (value, label), key in zip(Cause.choices, ("0", "1", "2", "3"))],
        "values": form_values,
        "status": status,
        "check": check,
        "rerun_diffs": selectors.rerun_diffs(sample=sample),
        "can_change": can_change_category(request.user, sample.label_id),
        "position": position,
        "filter_key": filter_key,
        "sort_key": sort_key,
        "filter_label": queue_filters()[filter_key].label,
        "queue_query": _query(filter_key, sort_key),
        "previous_url": sample_url(position.previous_id, filter_key, sort_key) if position.previous_id else "",
        "next_url": sample_url(position.next_id, filter_key, sort_key) if position.next_id else "",
        "edit_rows": _edit_rows(sample),
        # The team's own description (picture2text) first, then the structured image info.
        "image_info_rows": ([("图片描述", sample.description)] if sample.description else [])
        + _image_info_rows(sample.image_info),
        "notice": notice,
        "notice_kind": notice_kind,
        "long_limit": rules.length_limit(),
        # Reviewer assist: the drafted correction, and why the label is suspected.
        "draft": draft,
        "suspicion": suspicion_for(sample),
    }


def _render_sample(request, context, *, status=200, push_url: str | None = None):
    return render_page(request, "review/sample.html", "sample-page", context, status=status, push_url=push_url)


@require_GET
@login_required
def sample_page(request, sample_id: int):
    """The image, the three modes side by side, definitions, the review form and its history."""
    filter_key, sort_key = QueueStateForm(request.GET).state()
    return _render_sample(request, _sample_context(request, sample_id, filter_key, sort_key))


@require_POST
@login_required
def review_submit(request, sample_id: int):
    """Save the review; on success show the next sample of the queue (htmx) or redirect to it."""
    sample = get_object_or_404(Sample.objects.select_related("label", "dataset"), pk=sample_id)
    filter_key, sort_key = QueueStateForm(request.POST).state()
    form = ReviewForm(request.POST, dataset=sample.dataset)
    posted = form.typed()

    def failed(message: str, status: int, *, version=None):
        # The page comes back with everything the reviewer typed, and the reason.
        values = dict(posted)
        if version is not None:
            values["version"] = version
        context = _sample_context(request, sample.pk, filter_key, sort_key, values=values, notice=message,
                                  notice_kind="error")
        return _render_sample(request, context, status=status)

    if not can_change_category(request.user, sample.label_id):
        return failed("你没有被分配这个类别，只能查看，不能修改。", 403)
    if not form.is_valid():
        errors = "；".join(e for errs in form.errors.values() for e in errs)
        return failed(errors, 400)
    data = form.cleaned_data
    keep = data.get("action") == ACTION_KEEP
    try:
        if keep:
            review = review_keep(sample=sample, user=request.user, version=data["version"],
                                 shown_output=form.shown_output(), note=data["note"])
        else:
            review = review_save(
                sample=sample, user=request.user, cause=data["cause"], corrected_output=data["corrected_output"],
                label_error=data["label_error"], suggested_label=data["suggested_label"], note=data["note"],
                version=data["version"], suggestion_uncertain=data["suggestion_uncertain"],
                correction_override=data["correction_override"], correction_draft=form.posted_draft(),
            )
    except ApplicationError as exc:
        return failed(exc.message, STATUS_FOR_CODE.get(exc.code, 400), version=exc.extra.get("current_version"))
    kept = "正确，保留" if keep else "已保存"
    # The next sample after this one's place as the reviewer saw it (a save can move it in the order).
    next_id = selectors.queue_neighbours(sample=sample, filter_key=filter_key, sort_key=sort_key)[1]
    if next_id is None:
        notice = f"{kept}：{sample.external_id}（版本 {review.version}）。这是队列的最后一条。"
        target_id = sample.pk
    else:
        notice = f"{kept}：{sample.external_id}（版本 {review.version}），已进入下一条。"
        target_id = next_id
    url = sample_url(target_id, filter_key, sort_key)
    if not request.htmx:
        messages.success(request, notice)
        return redirect(url)
    context = _sample_context(request, target_id, filter_key, sort_key, notice=notice)
    response = _render_sample(request, context, push_url=url)
    response["X-Saved-Sample"] = str(sample.pk)  # the page drops that sample's unsaved draft
    return response


@require_POST
@login_required
def check_correction(request, sample_id: int):
    """The live check of the mode-3 correction being typed (the `#correction-check` partial)."""
    sample = get_object_or_404(Sample.objects.select_related("label", "dataset"), pk=sample_id)
    form = CorrectionCheckForm(request.POST)
    text = form.text()
    mode3 = sample.reasonings.filter(mode=Mode.LIMITED).values_list("output", flat=True).first() or ""
    check = None
    if reviewer_text(text) and reviewer_text(text) != reviewer_text(mode3):
        suggested = (Category.objects.filter(dataset=sample.dataset, name=form.suggested_name())
                     .exclude(pk=sample.label_id).first())
        check = correction_check(sample=sample, text=text, label_error=form.label_error_claimed(),
                                 suggested_label=suggested)
    return render(request, "review/sample.html#correction-check",
                  {"check": check, "long_limit": rules.length_limit(), "sample": sample})


@require_POST
@login_required
def rerun_decide(request, sample_id: int):
    """Accept (or keep the reviewed versions instead of) the model outputs of a re-run."""
    sample = get_object_or_404(Sample.objects.select_related("label", "dataset"), pk=sample_id)
    filter_key, sort_key = QueueStateForm(request.GET).state()
    accept = RerunDecisionForm(request.POST).accept()
    try:
        reasoning_pending_decide(sample=sample, user=request.user, accept=accept)
    except ApplicationError as exc:
        context = _sample_context(request, sample.pk, filter_key, sort_key, notice=exc.message, notice_kind="error")
        return _render_sample(request, context, status=STATUS_FOR_CODE.get(exc.code, 400))
    notice = ("已采用模型新结果：请确认审核（原因、修正）仍然适用。" if accept else "已保留审核时的模型结果，新结果未采用。")
    if not request.htmx:
        messages.success(request, notice)
        return redirect(sample_url(sample.pk, filter_key, sort_key))
    return _render_sample(request, _sample_context(request, sample.pk, filter_key, sort_key, notice=notice))


@require_POST
@login_required
def edit_restore(request, edit_id: int):
    """Staff: restore the review to the state saved by an earlier edit."""
    edit = get_object_or_404(ReviewEdit.objects.select_related("review"), pk=edit_id)
    filter_key, sort_key = QueueStateForm(request.GET).state()
    sample_id = edit.review.sample_id
    try:
        review = review_restore(edit=edit, user=request.user)
    except ApplicationError as exc:
        context = _sample_context(request, sample_id, filter_key, sort_key, notice=exc.message, notice_kind="error")
        return _render_sample(request, context, status=STATUS_FOR_CODE.get(exc.code, 400))
    notice = f"已恢复到版本 {edit.version}（新版本 {review.version}）。"
    if not request.htmx:
        messages.success(request, notice)
        return redirect(sample_url(sample_id, filter_key, sort_key))
    return _render_sample(request, _sample_context(request, sample_id, filter_key, sort_key, notice=notice))


# --------------------------------------------------------------------------- images
@require_GET
@login_required
def image_file(request, path: str):
    """An image under MEDIA_ROOT, for signed-in users, as its real image type (never HTML)."""
    try:
        check = inspect_image(media_path(path))
    except ApplicationError:
        raise Http404("图片不存在") from None
    response = FileResponse(check.path.open("rb"), content_type=check.content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = "inline"
    response["Cache-Control"] = "private, max-age=3600"
    return response

