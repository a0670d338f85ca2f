"""URLs of people in the REST API (``/api/people/``) and of identity sources (``/api/identity-sources/``)."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("people", views.PersonViewSet, basename="api-person")
router.register("identity-sources", views.IdentitySourceViewSet, basename="api-identity-source")

urlpatterns = [path("api/", include(router.urls))]
