"""URLs of people in the REST API (``/api/people/``)."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("people", views.PersonViewSet, basename="api-person")

urlpatterns = [path("api/", include(router.urls))]
