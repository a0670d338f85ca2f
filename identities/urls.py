"""The screens of people: the People list, a person's page and its form (admins); identity sources (admins)."""

from django.urls import path

from .screens import people, sources

app_name = "identities"

urlpatterns = [
    path("people/", people.people_list, name="people"),
    path("people/<int:pk>/", people.person_detail, name="person"),
    path("people/<int:pk>/edit", people.person_edit, name="person-edit"),
    path("identity-sources/", sources.source_list, name="identity-sources"),
    path("identity-sources/<int:integration_id>/", sources.source_detail, name="identity-source"),
    path("identity-sources/<int:integration_id>/apply", sources.source_apply, name="identity-source-apply"),
    path(
        "identity-sources/<int:integration_id>/confirm",
        sources.source_confirm,
        name="identity-source-confirm",
    ),
    path(
        "identity-sources/<int:integration_id>/discard",
        sources.source_discard,
        name="identity-source-discard",
    ),
]
