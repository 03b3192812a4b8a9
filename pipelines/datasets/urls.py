"""URLs of the datasets area: the feedback / logs / builder pages, mounted at /feedback/ (namespace
"feedback"), and the export download, mounted at /exports/ (namespace "exports", `export_patterns`)."""
from django.urls import path

from . import views

app_name = "feedback"

urlpatterns = [
    path("", views.samples, name="samples"),
    path("<int:sample_id>/decide/", views.decide, name="decide"),
    path("import/", views.import_upload, name="import"),
    path("logs/", views.logs, name="logs"),
    path("logs/import/", views.logs_import, name="logs_import"),
    path("logs/<int:job_id>/", views.log_records, name="log_records"),
    path("builder/", views.builder, name="builder"),
    path("builder/preview/", views.builder_preview, name="builder_preview"),
    path("builder/write/", views.builder_write, name="builder_write"),
]

# The one download URL of every export: include(export_patterns) gives the namespace "exports".
export_patterns = ([
    path("<int:export_id>/files/<str:name>", views.export_file, name="file"),
], "exports")
