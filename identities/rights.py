"""Who may see and change which person. The People screens, the navigation and the people API all ask here.

- **Seeing** (:func:`visible_people`): admins see everybody; everyone else sees themselves and their direct
  reports (the people whose manager they are). Anybody else is a 404, on the screens as in the API: whether
  a person exists is not theirs to learn.
- **Changing** (:func:`can_edit_person`): admins only, for now.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from integrations.rights import is_admin

from .models import Person


def visible_people(user) -> QuerySet[Person]:
    if is_admin(user):
        return Person.objects.all()
    if not (user and user.is_authenticated):
        return Person.objects.none()
    return Person.objects.filter(Q(user=user) | Q(user__manager=user))


def sees_others(user) -> bool:
    """Whether ``user`` may see anybody besides themselves (the navigation shows People to them)."""
    if is_admin(user):
        return True
    return bool(user and user.is_authenticated) and user.reports.exists()


def can_edit_person(user, person: Person | None = None) -> bool:
    """Creating and changing people (``person`` None: creating one): admins only."""
    return is_admin(user)
