"""Jobs, job start forms, prompt editor and queue monitor, mounted at /jobs/ (namespace "jobs"; review adds
its own job pages to the namespace, see config/urls.py)."""
from django.urls import path

from . import views

app_name = "jobs"

urlpatterns = [
    path("", views.job_list, name="list"),
    path("<int:job_id>/", views.job_detail, name="detail"),
    path("<int:job_id>/progress/", views.job_progress_partial, name="progress"),
    path("<int:job_id>/items/", views.job_items, name="items"),
    path("<int:job_id>/cancel/", views.job_cancel_view, name="cancel"),
    path("<int:job_id>/resume/", views.job_resume_view, name="resume"),
    path("<int:job_id>/retry-failed/", views.job_retry_view, name="retry_failed"),
    path("new/", views.job_create_dispatch, name="create"),
    path("new/<str:kind>/", views.job_start, name="start"),
    path("prompts/", views.prompt_list, name="prompts"),
    path("prompts/<str:kind>/", views.prompt_edit, name="prompt_edit"),
    path("monitor/", views.monitor_page, name="monitor"),
    path("monitor/panel/", views.monitor_panel, name="monitor_panel"),
]
