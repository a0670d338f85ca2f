from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import screens

handler400 = "governance.inputs.bad_request"  # the API's error shape on API URLs, the 400 page elsewhere

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/tokens/", screens.tokens, name="tokens"),
    path("account/tokens/<int:pk>/revoke", screens.token_revoke, name="token-revoke"),
    path("", include("integrations.urls")),
    path("", include("integrations.api.urls")),
]
