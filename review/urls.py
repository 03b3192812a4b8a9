"""The review flow, mounted at `/` (app_name "review"; the home page is `review:home`)."""
from django.urls import path

from . import assist_views, views

app_name = "review"

urlpatterns = [
    path("", views.home, name="home"),
    path("datasets/<int:dataset_id>/assignments/", views.assignments, name="assignments"),
    path("categories/<int:category_id>/", views.queue, name="queue"),
    path("samples/<int:sample_id>/", views.sample_page, name="sample"),
    path("samples/<int:sample_id>/review/", views.review_submit, name="save"),
    path("samples/<int:sample_id>/check-correction/", views.check_correction, name="check_correction"),
    path("samples/<int:sample_id>/rerun/", views.rerun_decide, name="rerun_decide"),
    path("edits/<int:edit_id>/restore/", views.edit_restore, name="restore"),
    path("images/<path:path>", views.image_file, name="image"),
    # Reviewer assist: drafted corrections and the label-error ranking.
    path("categories/<int:category_id>/draft-corrections/", assist_views.category_draft_corrections,
         name="draft_corrections"),
    path("drafts/<int:draft_id>/discard/", assist_views.correction_draft_discard, name="draft_discard"),
    path("samples/<int:sample_id>/image/", assist_views.sample_image, name="sample_image"),
    path("datasets/<int:dataset_id>/suspects/", assist_views.dataset_suspects, name="suspects"),
    path("datasets/<int:dataset_id>/suspects.csv", assist_views.dataset_suspects_csv, name="suspects_csv"),
]
