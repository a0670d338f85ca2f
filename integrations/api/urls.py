"""URLs of the inventory's REST API (``/api/``) and the ISC-compatible ``/v3/sources``."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import sources, views

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


urlpatterns = [
    path("api/v3/sources/<str:id>", sources.SourceView.as_view(), name="api-source"),
    path("v3/sources/<str:id>", sources.SourceAliasView.as_view(), name="isc-source"),
    path("api/", include(router.urls)),
]
