"""Top-level URLs. Each area of the product owns its own urls module."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from config.auth import login_view, rate_limited_login
from config.favicon import favicon
from config.health import healthz
from pipelines.jobs import urls as job_urls
from pipelines.datasets.urls import export_patterns
from review.jobs import urls as review_job_urls

# The admin's own login form gets the same failure limits as ours.
admin.site.login = rate_limited_login(admin.site.login)

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("login/", login_view, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("django-admin/", admin.site.urls),
    path("analysis/", include("review.analysis_urls")),
    path("api/", include("review.api_urls")),
    # One "jobs" namespace: the engine's pages and the job pages of review's own kinds.
    path("jobs/", include((job_urls.urlpatterns + review_job_urls.urlpatterns, job_urls.app_name))),
    path("generation/", include("pipelines.generation.urls")),
    path("feedback/", include("pipelines.datasets.urls")),
    path("dpo/", include("pipelines.dpo.urls")),
    path("exports/", include(export_patterns)),
    path("", include("review.urls")),
]
# Media files are never served raw (not even in DEBUG): images go through review:image, which
# checks the login, confines the path to MEDIA_ROOT and sets the image content type.

# The product's own error pages (Chinese, with the menu); CSRF failures: settings.CSRF_FAILURE_VIEW.
handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"
