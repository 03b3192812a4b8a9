"""/api/: the DRF router, the OpenAPI schema, its docs page (Swagger UI served from
drf-spectacular-sidecar, no CDN) and the token endpoint."""
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.permissions import IsAuthenticated
from rest_framework.routers import DefaultRouter

from . import api

app_name = "api"

router = DefaultRouter()
router.register("datasets", api.DatasetViewSet, basename="dataset")
router.register("categories", api.CategoryViewSet, basename="category")
router.register("samples", api.SampleViewSet, basename="sample")
router.register("reviews", api.ReviewViewSet, basename="review")
router.register("assignments", api.AssignmentViewSet, basename="assignment")
router.register("exports", api.ExportViewSet, basename="export")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(permission_classes=[IsAuthenticated]), name="schema"),
    # The split view loads its init script from a URL: no inline <script> (CSP).
    path(
        "docs/",
        api.ApiDocsView.as_view(url_name="api:schema", permission_classes=[IsAuthenticated]),
        name="docs",
    ),
    path("token/", obtain_auth_token, name="token"),
    path("", include(router.urls)),
]
