"""The screens of just-in-time access: request catalogue, my requests and access, approvals, a request."""

from django.urls import path

from .screens import requests

app_name = "access"

urlpatterns = [
    path("request/", requests.catalogue, name="request-catalogue"),
    path("request/<int:role_pk>/", requests.request_new, name="request-new"),
    path("requests/", requests.my_requests, name="requests"),
    path("approvals/", requests.approvals, name="approvals"),
    path("requests/<int:pk>/", requests.request_detail, name="request-detail"),
    path("requests/<int:pk>/approve", requests.request_approve, name="request-approve"),
    path("requests/<int:pk>/deny", requests.request_deny, name="request-deny"),
    path("requests/<int:pk>/cancel", requests.request_cancel, name="request-cancel"),
    path("requests/<int:pk>/end", requests.request_end, name="request-end"),
    path("requests/<int:pk>/retry", requests.request_retry, name="request-retry"),
    path("tickets/<int:pk>/close", requests.ticket_close, name="ticket-close"),
]
