from django.urls import path

from . import export_views as views

app_name = "exports"
urlpatterns = [
    path("<int:export_id>/files/<str:name>", views.export_file, name="file"),
]
