"""URLs of the REST API (``/api/``), its schema and docs, and the ISC-compatible ``/v3/sources``."""

from django.urls import include, path, re_path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.exceptions import NotFound
from rest_framework.routers import DefaultRouter

from governance.api import ApiTokenViewSet

from . import access_requests, sources, views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("integrations", views.IntegrationViewSet, basename="api-integration")
router.register("resources", views.ResourceViewSet, basename="api-resource")
router.register("roles", views.RoleViewSet, basename="api-role")
router.register("accounts", views.AccountViewSet, basename="api-account")
router.register("permissions", views.PermissionViewSet, basename="api-permission")
router.register("workflows", views.WorkflowViewSet, basename="api-workflow")
router.register("rules", views.RuleViewSet, basename="api-rule")
router.register("jobs", views.JobViewSet, basename="api-job")
router.register("audit-events", views.AuditEventViewSet, basename="api-audit-event")
router.register("access-requests", access_requests.AccessRequestViewSet, basename="api-access-request")
router.register("access-tickets", access_requests.AccessTicketViewSet, basename="api-access-ticket")
router.register("tokens", ApiTokenViewSet, basename="api-token")


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@authentication_classes([])
@permission_classes([])
def not_found(request, rest=""):
    raise NotFound("No such API endpoint.")


urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: the Content-Security-Policy forbids inline scripts.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v3/sources/<str:id>", sources.SourceView.as_view(), name="api-source"),
    path("v3/sources/<str:id>", sources.SourceAliasView.as_view(), name="isc-source"),
    path("api/", include(router.urls)),
    re_path(r"^api/(?P<rest>.*)$", not_found, name="api-not-found"),
]
