"""People: the People list and a person's page, built the one way the inventory's are
(``integrations.screens.pages``: a FilterSet filters, the table sorts, counts and pages, the rows shown are
then loaded by id; an object page fetches what the user may see, 404 otherwise)."""

from __future__ import annotations

import django_tables2 as tables
from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.utils.html import format_html

from integrations.screens.common import style_form
from integrations.screens.pages import ListSpec, ObjectPage, list_table
from integrations.screens.tables import Base

from .. import services
from ..filters import PersonFilter, departments
from ..models import Person
from ..rights import can_edit_person, visible_people
from ..selectors import (
    bounded,
    open_requests,
    openable_people,
    person_accounts,
    person_events,
    person_permissions,
    person_reports,
    person_rows,
    provenance,
)
from .forms import PersonForm

STATUS_BADGES = {"active": "bg-green-lt", "leave": "bg-yellow-lt", "terminated": "bg-red-lt"}
EVENTS = 50  # the person's latest audit events on their page


def status_badge(person: Person) -> str:
    return format_html(
        '<span class="badge {}" data-testid="person-status">{}</span>',
        STATUS_BADGES.get(person.status, "bg-secondary-lt"),
        person.get_status_display(),
    )


class PersonTable(Base):
    name = tables.Column(
        empty_values=(),
        linkify=("identities:person", {"pk": tables.A("pk")}),
        order_by=("user__last_name", "user__first_name", "user__username"),
    )
    username = tables.Column(accessor="user__username", verbose_name="Username")
    employee_id = tables.Column(verbose_name="Employee id", default="—")
    email = tables.Column(accessor="user__email", verbose_name="Email", default="—")
    department = tables.Column(accessor="user__department", verbose_name="Department", default="—")
    title = tables.Column(accessor="user__title", verbose_name="Title", default="—")
    manager = tables.Column(accessor="user__manager", default="—", order_by=("user__manager__username",))
    status = tables.Column()
    source = tables.Column(verbose_name="Identity source", default="—", order_by=("source__name",))

    class Meta(Base.Meta):
        model = Person
        fields = (
            "name",
            "username",
            "employee_id",
            "email",
            "department",
            "title",
            "manager",
            "status",
            "source",
        )
        order_by = ("username",)
        row_attrs = {"data-testid": lambda record: f"person-{record.pk}"}

    def render_name(self, record):
        return record.name

    def render_status(self, record):
        return status_badge(record)


PEOPLE = ListSpec(
    PersonFilter,
    lambda user: visible_people(user).order_by("user__username"),
    person_rows,
    PersonTable,
)


@login_required
def people_list(request):
    filterset, table = list_table(request, PEOPLE, empty_text="No person matches these filters.")
    # Departments are words, not ids (the API takes any): the screen offers those of the people shown.
    choices = [("", "Any"), *((d, d) for d in departments(visible_people(request.user)))]
    filterset.form.fields["department"].widget = forms.Select(choices=choices, attrs={"class": "form-select"})
    context = {"table": table, "filter": filterset, "nav": "people", "title": "People"}
    return render(request, "people/list.html", context)


def _person(request, pk: int) -> Person:
    """The person, if the user may see them; 404 otherwise, exactly like an id that does not exist."""
    return get_object_or_404(visible_people(request.user).select_related("user__manager", "source"), pk=pk)


def person_context(request, person: Person, **extra) -> dict:
    permissions = bounded(person_permissions(person))
    how = provenance(permissions.rows, viewer=request.user)
    reports = bounded(person_reports(person))
    manager = person.user.manager
    return {
        "person": person,
        "nav": "people",
        "status": status_badge(person),
        "manager": manager,
        "reports": reports,
        "openable": openable_people(request.user, [person.user.manager_id, *(r.pk for r in reports.rows)]),
        "accounts": bounded(person_accounts(person)),
        "permissions": permissions,
        "held": [(p, how[p.pk]) for p in permissions.rows],
        "requests": open_requests(person, viewer=request.user),
        "events": bounded(person_events(person), EVENTS),
        "can_edit": can_edit_person(request.user, person),
        "person_form": style_form(PersonForm(initial=PersonForm.initial_for(person))),
        "section": None,
        **extra,
    }


PERSON = ObjectPage("people/detail.html", "identities:person", _person, person_context)

person_detail = PERSON.detail()

# Admins change a person (``rights.can_edit_person``; the service refuses anybody else with a 403).
person_edit = PERSON.section(
    PersonForm,
    "person",
    save=lambda actor, person, data: services.person_update(actor=actor, person=person, **data),
    message="{obj.name} saved.",
)
