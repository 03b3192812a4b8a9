"""Review's job pages, mounted under /jobs/ in the engine's "jobs" namespace (config/urls.py)."""
from django.urls import path

from . import views

urlpatterns = [
    path("rerun-wrong/<int:category_id>/", views.rerun_wrong, name="rerun_wrong"),
]
