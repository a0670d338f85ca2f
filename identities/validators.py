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


# What an identity source may fill, and which of them matches an account to its person.
SOURCE_FIELDS = (
    "username",
    "email",
    "first_name",
    "last_name",
    "display_name",
    "employee_id",
    "department",
    "title",
    "location",
    "status",
    "start_date",
    "end_date",
    "manager",
)
SOURCE_KEY_FIELDS = ("employee_id", "username")
SOURCE_STATUSES = ("active", "leave", "terminated")
MAX_STATUS_VALUES = 100


def validate_identity_source(source) -> None:
    """An identity source's mapping, status values and limit; one message naming what is wrong."""
    mapping = source.mapping
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise ValidationError(
            {"mapping": "The mapping must be a JSON object of person field → attribute name."}
        )
    mapping = {k: v for k, v in mapping.items() if v}
    unknown = sorted(set(mapping) - set(SOURCE_FIELDS))
    if unknown:
        raise ValidationError(
            {"mapping": f"Unknown person field(s): {', '.join(unknown)} (known: {', '.join(SOURCE_FIELDS)})."}
        )
    if not any(f in mapping for f in SOURCE_KEY_FIELDS):
        raise ValidationError(
            {"mapping": "Map employee_id or username: the key that matches an account to its person."}
        )
    if source.integration_id is not None:
        integration = source.integration
        names = set(integration.connector.spec.account_schema.attribute_names)
        missing = sorted(f"{f} → {a}" for f, a in mapping.items() if a not in names)
        if missing:
            raise ValidationError(
                {
                    "mapping": f"The accounts of {integration.name} have no attribute for: "
                    + ", ".join(missing)
                    + f" (they have: {', '.join(sorted(names))})."
                }
            )
    values = source.status_values
    if not isinstance(values, dict) or not all(
        k in SOURCE_STATUSES
        and isinstance(v, list)
        and len(v) <= MAX_STATUS_VALUES
        and all(isinstance(x, str) and 0 < len(x) <= 200 for x in v)
        for k, v in values.items()
    ):
        raise ValidationError(
            {
                "status_values": 'The status values must be a JSON object such as {"terminated": ["T"], '
                '"leave": ["L"]}: a status (active, leave, terminated) → a list of the application\'s values '
                f"(at most {MAX_STATUS_VALUES}, each 1 to 200 characters)."
            }
        )
    if not 0 <= (source.leaver_limit_percent or 0) <= 100:
        raise ValidationError({"leaver_limit_percent": "The limit is a percentage, from 0 to 100."})
