"""The screens of people: the People list, a person's page and its form (admins)."""

from django.urls import path

from .screens import people

app_name = "identities"

urlpatterns = [
    path("people/", people.people_list, name="people"),
    path("people/<int:pk>/", people.person_detail, name="person"),
    path("people/<int:pk>/edit", people.person_edit, name="person-edit"),
]
