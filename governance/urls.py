"""The portal's URLs: the platform's own (sign-in, tokens, the API's schema and docs) and each app's.

Apps are included by name: the platform imports none of them.
"""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from . import api, screens

handler400 = "governance.inputs.bad_request"  # the API's error shape on API URLs, the 400 page elsewhere

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("tokens", api.ApiTokenViewSet, basename="api-token")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/tokens/", screens.tokens, name="tokens"),
    path("account/tokens/<int:pk>/revoke", screens.token_revoke, name="token-revoke"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: the Content-Security-Policy forbids inline scripts.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include(router.urls)),
    path("", include("integrations.urls")),
    path("", include("integrations.api.urls")),
    path("", include("access.urls")),
    path("", include("access.api.urls")),
    path("", include("identities.urls")),
    path("", include("identities.api.urls")),
    re_path(r"^api/(?P<rest>.*)$", api.not_found, name="api-not-found"),
]
