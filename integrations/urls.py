from django.urls import path

from . import views

app_name = "integrations"

urlpatterns = [
    path("catalogue/<slug:slug>/icon", views.application_icon, name="application-icon"),
]
