"""Reads of people: a user's person, what a person holds and how, their requests and their history.

A person's page and the people API read the same things here, each in a fixed number of queries whatever
the person holds: every list is one query for its first :data:`SHOWN` rows (and a count when there are
more), and the provenance of the permissions shown is one query per kind of answer.

How a live permission came to be held (:func:`provenance`), as a list of ``{"kind", "label", "url"}``:

- ``request``: "granted by access request #N (approved by …)", from the apps that grant access (the hook
  ``integrations.hooks.permission_provenance``; this app never imports ``access``);
- ``portal``: granted by the portal, when no app claims the permission (e.g. a prerequisite of old);
- ``external``: found in the application (a sync saw it; nobody asked the portal);
- ``birthright``: given for who the person is;
- ``implied``: "implied by <role>": the same account holds another role that gives this one (a role
  implication, directly or through a chain).

A permission may have several: found in the application *and* implied by a role the account holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet
from django.urls import reverse

from governance.models import AuditEvent
from integrations import hooks
from integrations.models import Account, Permission, Role
from integrations.rights import is_admin, manageable_roles
from integrations.selectors import granting_roles

from .models import Person
from .rights import visible_people

SHOWN = 200  # the most rows of each list on a person's page and in the people API's detail


@dataclass(frozen=True)
class Bounded:
    """The first rows of a list and how many there are in all."""

    rows: list
    total: int

    @property
    def more(self) -> bool:
        return self.total > len(self.rows)


def bounded(queryset: QuerySet, limit: int | None = None) -> Bounded:
    """The first ``limit`` rows (:data:`SHOWN` by default) and a count of all, only when there are more."""
    limit = limit or SHOWN
    rows = list(queryset[:limit])
    return Bounded(rows, queryset.count() if len(rows) == limit else len(rows))


def person_for(user) -> Person | None:
    """The user's person (every user has one: the migration, the services and ``IdentitiesConfig.ready``
    make it; a read never does)."""
    if user is None or user.pk is None:
        return None
    return Person.objects.select_related("user").filter(pk=user.pk).first()


def person_rows(queryset: QuerySet) -> QuerySet:
    """What a row of the People list and of the API shows, loaded with it."""
    return queryset.select_related("user", "user__manager", "source")


def person_accounts(person: Person) -> QuerySet[Account]:
    """Every account linked to the person's user, in every integration (removed ones too)."""
    return (
        Account.objects.filter(user_id=person.pk)
        .select_related("integration")
        .order_by("integration__name", "identity", "pk")
    )


def person_permissions(person: Person) -> QuerySet[Permission]:
    """The live permissions of the person's accounts."""
    return (
        Permission.objects.filter(account__user_id=person.pk, ended_at__isnull=True)
        .select_related("integration", "account", "role__resource")
        .order_by("integration__name", "role__resource__name", "role__name", "pk")
    )


def person_reports(person: Person) -> QuerySet[Person]:
    return Person.objects.filter(user__manager_id=person.pk).select_related("user").order_by("user__username")


def person_events(person: Person) -> QuerySet[AuditEvent]:
    """The audit log of the person: the events of their user and of their person, newest first."""
    types = ContentType.objects.get_for_models(get_user_model(), Person)
    return AuditEvent.objects.filter(
        Q(object_type=types[get_user_model()], object_id=str(person.pk))
        | Q(object_type=types[Person], object_id=str(person.pk))
    ).order_by("-occurred_at", "-id")


def open_requests(person: Person, *, viewer=None, limit: int = SHOWN) -> Bounded:
    """The open access requests giving the person access, from the apps that file them (a hook)."""
    answers = hooks.open_requests_of(person.user, viewer=viewer, limit=limit)
    rows = [row for answer in answers for row in answer["rows"]][:limit]
    return Bounded(rows, sum(answer["total"] for answer in answers))


SOURCE_LABELS = {
    Permission.Source.PORTAL: "granted by the portal",
    Permission.Source.EXTERNAL: "found in the application",
    Permission.Source.BIRTHRIGHT: "birthright",
}


def provenance(permissions: list[Permission], *, viewer=None) -> dict[int, list[dict]]:
    """How each of ``permissions`` came to be held (see the module's docstring), by permission id. Links are
    empty where ``viewer`` may not open their page (``None``: the portal itself, every link)."""
    claimed = hooks.permission_provenance.merged(permissions, viewer=viewer)
    out: dict[int, list[dict]] = {}
    for p in permissions:
        items = list(claimed.get(p.pk, []))
        if p.source != Permission.Source.PORTAL or not items:
            items.append({"kind": p.source, "label": SOURCE_LABELS.get(p.source, p.source), "url": ""})
        out[p.pk] = items
    for permission_id, items in _implied(permissions, viewer).items():
        out[permission_id].extend(items)
    return out


def _implied(permissions: list[Permission], viewer) -> dict[int, list[dict]]:
    """For each permission, the other roles its account holds that give its role: one query for the roles
    that give them, one for those the accounts hold (with their names), one for which the viewer may open."""
    givers = granting_roles({p.role_id for p in permissions})
    candidates = set().union(*givers.values())
    if not candidates:
        return {}
    held: dict[int, dict[int, Role]] = {}
    holding = Permission.objects.filter(
        account_id__in={p.account_id for p in permissions}, role_id__in=candidates, ended_at__isnull=True
    ).select_related("role__resource")
    for permission in holding:
        held.setdefault(permission.account_id, {})[permission.role_id] = permission.role
    openable = (
        candidates
        if is_admin(viewer) or viewer is None
        else set(manageable_roles(viewer).filter(pk__in=candidates).values_list("pk", flat=True))
    )
    out: dict[int, list[dict]] = {}
    for p in permissions:
        roles = held.get(p.account_id, {})
        for role_id in sorted(givers[p.role_id] & set(roles)):
            url = reverse("integrations:role", args=[role_id]) if role_id in openable else ""
            out.setdefault(p.pk, []).append(
                {"kind": "implied", "label": f"implied by {roles[role_id]}", "url": url}
            )
    return out


def openable_people(viewer, ids) -> set[int]:
    """Which of the people ``ids`` (a manager, reports: user ids) ``viewer`` may open the page of."""
    ids = {pk for pk in ids if pk is not None}
    return set(visible_people(viewer).filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
