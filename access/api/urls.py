"""URLs of just-in-time access in the REST API (``/api/access-requests/``, ``/api/access-tickets/``)."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("access-requests", views.AccessRequestViewSet, basename="api-access-request")
router.register("access-tickets", views.AccessTicketViewSet, basename="api-access-ticket")

urlpatterns = [path("api/", include(router.urls))]
