"""The one download view for every export (training set, builder, logs, generation, DPO)."""
import mimetypes

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.views.decorators.http import require_GET

from core.errors import ApplicationError

from . import exports


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
