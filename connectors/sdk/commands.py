"""Standard command names, and helpers for command input (the ``changes`` of ``std:account:update``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InputError
from .spec import as_list

TEST_CONNECTION = "std:test-connection"
ACCOUNT_LIST = "std:account:list"
ACCOUNT_READ = "std:account:read"
ACCOUNT_CREATE = "std:account:create"
ACCOUNT_UPDATE = "std:account:update"
ACCOUNT_DELETE = "std:account:delete"
ACCOUNT_ENABLE = "std:account:enable"
ACCOUNT_DISABLE = "std:account:disable"
ACCOUNT_UNLOCK = "std:account:unlock"
ACCOUNT_DISCOVER_SCHEMA = "std:account:discover-schema"
ENTITLEMENT_LIST = "std:entitlement:list"
ENTITLEMENT_READ = "std:entitlement:read"

# Commands whose outputs are account objects / entitlement objects, validated as such.
ACCOUNT_OUTPUT_COMMANDS = frozenset(
    {
        ACCOUNT_LIST,
        ACCOUNT_READ,
        ACCOUNT_CREATE,
        ACCOUNT_UPDATE,
        ACCOUNT_ENABLE,
        ACCOUNT_DISABLE,
        ACCOUNT_UNLOCK,
    }
)
ENTITLEMENT_OUTPUT_COMMANDS = frozenset({ENTITLEMENT_LIST, ENTITLEMENT_READ})
# List commands: stateful input is honoured and the framework applies the filters.
LIST_COMMANDS = frozenset({ACCOUNT_LIST, ENTITLEMENT_LIST})
# Commands that address one existing object by identity.
IDENTITY_COMMANDS = frozenset(
    {
        ACCOUNT_READ,
        ACCOUNT_UPDATE,
        ACCOUNT_DELETE,
        ACCOUNT_ENABLE,
        ACCOUNT_DISABLE,
        ACCOUNT_UNLOCK,
        ENTITLEMENT_READ,
    }
)

CHANGE_OPS = ("Add", "Set", "Remove")


@dataclass(frozen=True)
class AttributeChange:
    """One entry of ``std:account:update``'s ``changes``. ``values`` is always a list."""

    op: str
    attribute: str
    values: list[Any]

    @property
    def value(self) -> Any:
        """The value as a single item (the first one, or ``None``), for single-valued attributes."""
        return self.values[0] if self.values else None

    def apply(self, current: list[Any], values: list[Any] | None = None) -> list[Any]:
        """A multi-valued attribute's ``current`` values after this change, as a new list: Set gives the
        values once each, in order; Add appends those not held yet; Remove drops them. ``values`` replaces
        the change's own values when the connector normalised them first."""
        values = self.values if values is None else values
        if self.op == "Set":
            return list(dict.fromkeys(values))
        if self.op == "Add":
            result = list(current)
            result.extend(v for v in values if v not in result)
            return result
        return [v for v in current if v not in values]


def changes(input: Mapping[str, Any]) -> list[AttributeChange]:
    """The ``changes`` of an update input, checked, with single values normalised to lists."""
    raw = input.get("changes")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InputError("input 'changes' must be a list")
    out = []
    for i, change in enumerate(raw):
        if not isinstance(change, Mapping):
            raise InputError(f"input changes[{i}] must be an object")
        op = change.get("op")
        if op not in CHANGE_OPS:
            raise InputError(f"input changes[{i}].op must be one of Add, Set, Remove, got {op!r}")
        attribute = change.get("attribute")
        if not isinstance(attribute, str) or not attribute:
            raise InputError(f"input changes[{i}].attribute must be a non-empty string")
        out.append(AttributeChange(op, attribute, as_list(change.get("value"))))
    return out


def apply_changes(attributes: dict[str, Any], changes_: list[AttributeChange]) -> dict[str, Any]:
    """Apply changes to an attribute dict in place (Set replaces, Add/Remove edit multi-valued lists)."""
    for change in changes_:
        if change.op == "Set":
            if len(change.values) > 1 or isinstance(attributes.get(change.attribute), list):
                attributes[change.attribute] = list(change.values)
            else:
                attributes[change.attribute] = change.value
            continue
        attributes[change.attribute] = change.apply(as_list(attributes.get(change.attribute)))
    return attributes
