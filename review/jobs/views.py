"""The re-run of a category's wrong samples with an edited prompt (staff; linked from analysis).
Mounted under /jobs/ in the "jobs" namespace beside the engine's job pages (config/urls.py)."""
from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from core.errors import ApplicationError
from core.permissions import staff_required
from pipelines.jobs.prompts import MODE_KINDS, prompt_current
from review.models import Category, Mode

from .classification import accuracy, classification_rerun_wrong
from .forms import RerunWrongForm, rerun_mode


@require_http_methods(["GET", "POST"])
@staff_required
def rerun_wrong(request, category_id: int):
    """Re-run a mode on a category's wrong samples with an edited prompt (linked from analysis)."""
    category = get_object_or_404(Category.objects.select_related("dataset"), pk=category_id)
    mode = rerun_mode(request.POST, request.GET)
    template = prompt_current(MODE_KINDS[mode])
    form = RerunWrongForm(request.POST or None, initial={"mode": mode, "prompt_text": template.text})
    if request.method == "POST" and form.is_valid():
        try:
            job = classification_rerun_wrong(category=category, mode=form.cleaned_data["mode"],
                                             prompt_text=form.cleaned_data["prompt_text"], user=request.user)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"已创建重跑任务 #{job.pk}（{job.items_total} 个错误样本）。")
            return redirect("jobs:detail", job.pk)
    return render(request, "pipelines/job_rerun.html", {
        "form": form, "category": category, "mode": mode, "template": template,
        "before": accuracy(category=category, mode=mode), "modes": Mode.choices,
    })
