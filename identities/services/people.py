"""Writes of people: create a person (and the user behind them), change one, make sure a user has one.

- **Create** (:func:`person_create`): a new portal user with an unusable password (a person need never sign
  in; one who will sets a password through the usual reset) and their person, validated whole first.
- **Update** (:func:`person_update`): the user's fields that make a person (email, names, manager,
  department, title) and the person's own, in one change. Validated whole (``validators.py``): no manager
  cycle, a known status, an end date on or after the start date, bounded attributes, a unique employee id.
  Admins only for now (``rights.can_edit_person``); ``actor=None`` is the portal itself (an identity source).
- **Ensure** (:func:`person_ensure`): the person of a user saved anywhere else (the Django admin, the demo,
  a test), created as the user is (``IdentitiesConfig.ready``).

Each runs in one transaction under the actor's audit context: the user's and the person's rows are audited
by the audit signals (``user.*``, ``person.*``).
"""

from __future__ import annotations

from contextlib import contextmanager

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from governance.audit import audit_context

from ..models import Person
from ..rights import can_edit_person

__all__ = ["USER_FIELDS", "PERSON_FIELDS", "person_build", "person_create", "person_update", "person_ensure"]

# What a person is made of: fields kept on the user (the one truth the sign-in and workflows read) ...
USER_FIELDS = ("email", "first_name", "last_name", "manager", "department", "title")
# ... and the person's own.
PERSON_FIELDS = (
    "employee_id",
    "display_name",
    "location",
    "status",
    "start_date",
    "end_date",
    "attributes",
    "source",
)
# A person created by a service carries its fields to the receiver that creates the person with the user.
_PENDING = "_person_fields"


@contextmanager
def _write(actor):
    with audit_context(actor=actor), transaction.atomic():
        yield


def _split(fields: dict) -> tuple[dict, dict]:
    unknown = sorted(set(fields) - set(USER_FIELDS) - set(PERSON_FIELDS))
    if unknown:
        raise ValidationError({name: "Unknown field." for name in unknown})
    return (
        {k: v for k, v in fields.items() if k in USER_FIELDS},
        {k: v for k, v in fields.items() if k in PERSON_FIELDS},
    )


def _check(user, person: Person) -> None:
    """Validate the user and the person whole; their errors together, by field name."""
    errors: dict[str, list[str]] = {}
    # The person's one constraint (a unique employee id) is checked by its clean(), on the field.
    for obj, exclude, constraints in ((user, ["password", "last_login"], True), (person, ["user"], False)):
        try:
            obj.full_clean(exclude=exclude, validate_constraints=constraints)
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                errors.setdefault(name, []).extend(m for m in messages if m not in errors.get(name, []))
    if errors:
        raise ValidationError(errors)


def person_build(*, username: str, email: str = "", **fields):
    """A new person and their user, unsaved and unchecked: the user with an unusable password (a person
    need never sign in). ``person_create`` checks and saves one; an identity source saves many at once."""
    user_fields, person_fields = _split({"email": email, **fields})
    user = get_user_model()(username=username, **user_fields)
    user.set_unusable_password()
    return user, Person(user=user, **person_fields)


def person_create(*, actor, username: str, email: str = "", **fields) -> Person:
    """A new person and the portal user behind them (who cannot sign in until given a password)."""
    if actor is not None and not can_edit_person(actor, None):
        raise PermissionDenied("Only admins create people.")
    user, person = person_build(username=username, email=email, **fields)
    person_fields = {k: v for k, v in fields.items() if k in PERSON_FIELDS}
    _check(user, person)
    with _write(actor):
        setattr(user, _PENDING, person_fields)
        user.save()  # the receiver creates the person with these fields, audited as one creation
        return Person.objects.select_related("user").get(pk=user.pk)


def person_update(*, actor, person: Person, **fields) -> Person:
    """Change a person: the user's fields (email, names, manager, department, title) and the person's own."""
    user_fields, person_fields = _split(fields)
    if actor is not None and not can_edit_person(actor, person):
        raise PermissionDenied("Only admins change people.")
    with _write(actor):
        person = Person.objects.select_for_update().select_related("user").get(pk=person.pk)
        user = person.user
        for name, value in user_fields.items():
            setattr(user, name, value)
        for name, value in person_fields.items():
            setattr(person, name, value)
        _check(user, person)
        if user_fields:
            user.save(update_fields=list(user_fields))
        person.save()  # its update time moves with any change of the person
        return person


def person_ensure(*, actor=None, user) -> Person:
    """The user's person, created (status active) if they have none yet."""
    fields = user.__dict__.pop(_PENDING, {})
    with _write(actor):
        person, _ = Person.objects.get_or_create(user=user, defaults=fields)
        return person
