from django.urls import path

from . import views

app_name = "generation"

urlpatterns = [
    path("", views.runs, name="runs"),
    path("start/", views.start, name="start"),
    path("sources/import/", views.import_sources, name="import_sources"),
    path("runs/<int:job_id>/", views.analysis, name="analysis"),
    path("runs/<int:job_id>/files/<str:name>", views.team_file, name="team_file"),
    path("runs/<int:job_id>/failed/", views.failed, name="failed"),
    path("runs/<int:job_id>/failed/<int:example_id>/decide/", views.decide, name="decide"),
    path("runs/<int:job_id>/examples/<int:example_id>/image", views.example_image, name="image"),
    path("runs/<int:job_id>/rerun/", views.rerun, name="rerun"),
    path("runs/<int:job_id>/export/", views.export, name="export"),
]
