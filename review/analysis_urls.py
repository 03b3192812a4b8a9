from django.urls import path

from . import analysis_views as views

app_name = "analysis"

urlpatterns = [
    path("", views.analysis_home, name="home"),
    path("exports/", views.export_list, name="export_list"),
    path("exports/<int:export_id>/", views.export_detail, name="export_detail"),
    path("exports/<int:export_id>/download/", views.export_download, name="export_download"),
    path("<int:dataset_id>/", views.overview, name="overview"),
    path("<int:dataset_id>/confusion/", views.confusion, name="confusion"),
    path("<int:dataset_id>/analysis.md", views.dataset_markdown, name="dataset_markdown"),
    path("<int:dataset_id>/trainset_error.md", views.trainset_error, name="trainset_error"),
    path("<int:dataset_id>/mode2_errors.csv", views.mode2_errors_csv, name="mode2_errors_csv"),
    path("<int:dataset_id>/exports/", views.export_create, name="export_create"),
    path("<int:dataset_id>/classes/<int:category_id>/", views.class_detail, name="class"),
    path("<int:dataset_id>/classes/<int:category_id>/analysis.md", views.class_markdown, name="class_markdown"),
    path("<int:dataset_id>/classes/<int:category_id>/definition/", views.definition_revise, name="definition_revise"),
]
