"""A person's invariants, checked by the model's ``clean``, the services, the forms and the API alike.

- **Manager**: never the person, and never someone who reports to the person, directly or through others
  (a cycle of managers would make "the requester's manager" approve their own chain). The refusal names
  the cycle: ``Alice Analyst (alice) → Bea Boss (boss) → Alice Analyst (alice)``.
- **Dates**: an end date is on or after the start date.
- **Employee id**: unique when set.
- **Attributes**: a JSON object, bounded like every input of the portal (``governance.inputs``: depth, no
  NUL character) and at most :data:`MAX_ATTRIBUTES_BYTES` once encoded.

This module imports no model of its app: the model imports it.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from governance.inputs import InputError, check_json

MAX_ATTRIBUTES_BYTES = 64 * 1024
# Manager chains are walked one level per query; a deeper organisation than this is a data error.
MAX_MANAGER_DEPTH = 200


def validate_attributes(value: Any) -> None:
    if not isinstance(value, dict):
        raise ValidationError("The attributes must be a JSON object ({...}).")
    try:
        check_json(value)
    except InputError as exc:
        raise ValidationError(f"Invalid attributes: {exc}") from None
    size = len(json.dumps(value, ensure_ascii=False).encode())
    if size > MAX_ATTRIBUTES_BYTES:
        raise ValidationError(
            f"The attributes take {size:,} bytes; at most {MAX_ATTRIBUTES_BYTES:,} are kept per person."
        )


def manager_cycle(user_id: int, manager_id: int | None) -> list[str]:
    """If making ``manager_id`` the manager of ``user_id`` closes a cycle, the people in it (the person first
    and last, each shown as ``Full Name (username)``); else []."""
    if manager_id is None:
        return []
    users = get_user_model().objects
    chain = [user_id, manager_id]
    current = manager_id
    while current != user_id:
        current = users.filter(pk=current).values_list("manager_id", flat=True).first()
        if current is None or current in chain[1:] or len(chain) > MAX_MANAGER_DEPTH:
            return []  # the chain ends, or loops above the person without reaching them
        chain.append(current)
    names = {u.pk: str(u) for u in users.filter(pk__in=chain)}
    return [names[pk] for pk in chain]


def validate_manager(user, manager) -> None:
    manager_id = getattr(manager, "pk", manager)
    if manager_id is None:
        return
    if manager_id == user.pk:
        raise ValidationError({"manager": f"{user} cannot be their own manager."})
    cycle = manager_cycle(user.pk, manager_id)
    if cycle:
        raise ValidationError({"manager": "This would make a cycle of managers: " + " → ".join(cycle) + "."})


def validate_dates(start_date, end_date) -> None:
    if start_date and end_date and end_date < start_date:
        raise ValidationError(
            {"end_date": f"The end date ({end_date}) is before the start date ({start_date})."}
        )


def validate_employee_id(person) -> None:
    """An employee id names one person (the database's constraint holds it too; this says it on the field)."""
    if not person.employee_id:
        return
    others = type(person)._default_manager.filter(employee_id=person.employee_id).exclude(pk=person.pk)
    if others.exists():
        raise ValidationError({"employee_id": f"Another person has the employee id {person.employee_id!r}."})


def validate_person(person) -> None:
    """The invariants that span fields or rows: the user's manager, the person's dates, the employee id;
    every error at once, by field."""
    checks = [
        lambda: validate_dates(person.start_date, person.end_date),
        lambda: validate_employee_id(person),
    ]
    if person.user_id is not None:
        checks.insert(0, lambda: validate_manager(person.user, person.user.manager_id))
    errors: dict[str, list[str]] = {}
    for check in checks:
        try:
            check()
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                errors.setdefault(name, []).extend(messages)
    if errors:
        raise ValidationError(errors)
