"""DPO preference pairs, mounted at /dpo/ (namespace "dpo")."""
from django.urls import path

from . import views

app_name = "dpo"

urlpatterns = [
    path("", views.job_list, name="jobs"),
    path("new/", views.job_new, name="new"),
    path("start/", views.job_start, name="start"),
    path("jobs/<int:job_id>/", views.job_detail, name="job"),
    path("jobs/<int:job_id>/pairs/", views.pair_list, name="pairs"),
    path("jobs/<int:job_id>/pairs/<int:pair_id>/", views.pair_review_page, name="pair"),
    path("jobs/<int:job_id>/pairs/<int:pair_id>/review/", views.pair_review_action, name="pair_review"),
    path("jobs/<int:job_id>/export/", views.export_create, name="export"),
]
