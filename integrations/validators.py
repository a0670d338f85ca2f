"""Validation shared by the models' ``clean``, the services, the forms and the API.

Models validate through this module (never through a service or a selector): a rule's conditions
and actions, a change set of a bulk action or a rule, a role implication that would close a cycle.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from governance.inputs import parse_id

from .durations import normalize_durations
from .models import ApprovalWorkflow, Integration, Resource, Role, RoleImplication, Rule

TARGETS: dict[str, type] = {"integrations": Integration, "resources": Resource, "roles": Role}

ACTION_LABELS = {
    "owner": "Set owner",
    "maintainers": "Add maintainers",
    "workflow": "Set approval workflow",
    "requestable": "Set requestable",
    "tags": "Add tags",
    "allowed_durations": "Override allowed durations",
}

# Which actions each target supports (roles have no owner or maintainers of their own; integrations no tags).
SUPPORTED: dict[str, tuple[str, ...]] = {
    "integrations": ("owner", "maintainers", "workflow", "requestable", "allowed_durations"),
    "resources": ("owner", "maintainers", "workflow", "requestable", "tags", "allowed_durations"),
    "roles": ("workflow", "requestable", "tags", "allowed_durations"),
}


def model_for(target: str):
    try:
        return TARGETS[target]
    except KeyError:
        raise ValidationError(
            {"target": f"Unknown target {target!r}; choose from {', '.join(TARGETS)}."}
        ) from None


def validate_changes(target: str, changes: Any) -> dict[str, Any]:
    """Check a change set against ``target``; return it normalised. Raises ``ValidationError``."""
    model_for(target)
    if not isinstance(changes, dict) or not changes:
        raise ValidationError({"actions": "Choose at least one change."})
    unknown = [k for k in changes if k not in ACTION_LABELS]
    if unknown:
        raise ValidationError({"actions": f"Unknown change(s): {', '.join(unknown)}."})
    unsupported = [k for k in changes if k not in SUPPORTED[target]]
    if unsupported:
        raise ValidationError(
            {
                "actions": f"{target.capitalize()} do not support: {', '.join(ACTION_LABELS[k] for k in unsupported)}."
            }
        )
    out: dict[str, Any] = {}
    users = get_user_model().objects
    if "owner" in changes:
        owner = changes["owner"]
        if owner in (None, ""):
            raise ValidationError({"owner": "Choose the new owner."})
        pk = parse_id(owner)
        if pk is None or not users.filter(pk=pk).exists():
            raise ValidationError({"owner": f"Unknown user {owner!r}."})
        out["owner"] = pk
    if "maintainers" in changes:
        given = changes["maintainers"] or []
        if not isinstance(given, list):
            raise ValidationError({"maintainers": "A list of user ids."})
        ids = sorted({parse_id(u) or 0 for u in given})
        if not ids:
            raise ValidationError({"maintainers": "Choose at least one maintainer."})
        if users.filter(pk__in=ids).count() != len(ids):
            raise ValidationError({"maintainers": "Unknown user among the maintainers."})
        out["maintainers"] = ids
    if "workflow" in changes:
        wf = changes["workflow"]
        if wf in (None, ""):
            out["workflow"] = None
        elif (pk := parse_id(wf)) is None or not ApprovalWorkflow.objects.filter(pk=pk).exists():
            raise ValidationError({"workflow": f"Unknown approval workflow {wf!r}."})
        else:
            out["workflow"] = pk
    if "requestable" in changes:
        if not isinstance(changes["requestable"], bool):
            raise ValidationError({"requestable": "Requestable must be true or false."})
        out["requestable"] = changes["requestable"]
    if "tags" in changes:
        given = changes["tags"] or []
        if not isinstance(given, list) or not all(isinstance(n, str | int) for n in given):
            raise ValidationError({"tags": "A list of tag names."})
        names = sorted({str(n).strip() for n in given if str(n).strip()})
        if not names:
            raise ValidationError({"tags": "Name at least one tag."})
        if any(len(n) > 100 for n in names):
            raise ValidationError({"tags": "A tag has at most 100 characters."})
        out["tags"] = names
    if "allowed_durations" in changes:
        try:
            durations = normalize_durations(changes["allowed_durations"] or [])
        except ValidationError as exc:
            raise ValidationError({"allowed_durations": exc.messages}) from None
        if not durations:
            raise ValidationError({"allowed_durations": "Choose at least one duration."})
        out["allowed_durations"] = durations
    return out


# -- rules --

# field -> the operators it accepts
CONDITION_FIELDS: dict[str, tuple[str, ...]] = {
    "integration": ("is", "is_not"),
    "name": ("equals", "not_equals", "contains", "starts_with", "ends_with"),
    "tag": ("has", "has_not"),
    "attribute": ("equals", "not_equals", "contains", "exists", "not_exists"),
    "owner": ("is", "is_not", "is_empty", "is_set"),
    "requestable": ("is",),
}
FIELD_LABELS = {
    "integration": "Integration",
    "name": "Name",
    "tag": "Tag",
    "attribute": "Attribute",
    "owner": "Owner",
    "requestable": "Requestable",
}
OP_LABELS = {
    "is": "is",
    "is_not": "is not",
    "equals": "equals",
    "not_equals": "does not equal",
    "contains": "contains",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "has": "has",
    "has_not": "does not have",
    "exists": "exists",
    "not_exists": "does not exist",
    "is_empty": "is empty",
    "is_set": "is set",
}
NO_VALUE_OPS = {"exists", "not_exists", "is_empty", "is_set"}
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")


def _bool(value) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "yes", "1"}:
        return True
    if isinstance(value, str) and value.lower() in {"false", "no", "0"}:
        return False
    return None


def _lookup(manager, name_field: str, value) -> int | None:
    """An id given as an id or as a name."""
    if value in (None, "") or not isinstance(value, str | int) or isinstance(value, bool):
        return None
    pk = parse_id(value)
    if pk is not None:
        return pk if manager.filter(pk=pk).exists() else None
    return manager.filter(**{name_field: str(value).strip()}).values_list("pk", flat=True).first()


def validate_conditions(conditions: Any) -> list[dict]:
    """Check and normalise a rule's conditions; errors name the condition by its number."""
    if not isinstance(conditions, list):
        raise ValidationError({"conditions": "Conditions must be a list."})
    out, errors = [], []
    for n, cond in enumerate(conditions, 1):
        if not isinstance(cond, dict):
            errors.append(f"Condition {n} is not an object.")
            continue
        fname, op, value = cond.get("field"), cond.get("op"), cond.get("value")
        if not isinstance(fname, str) or fname not in CONDITION_FIELDS:
            errors.append(
                f"Condition {n}: unknown field {fname!r}; choose from {', '.join(CONDITION_FIELDS)}."
            )
            continue
        if op not in CONDITION_FIELDS[fname]:
            errors.append(
                f"Condition {n}: {FIELD_LABELS[fname]} cannot use {op!r}; choose from "
                f"{', '.join(CONDITION_FIELDS[fname])}."
            )
            continue
        clean: dict[str, Any] = {"field": fname, "op": op}
        if fname == "attribute":
            key = str(cond.get("key") or "").strip()
            if not ATTRIBUTE_KEY.match(key) or "__" in key:
                errors.append(f"Condition {n}: name the attribute (letters, digits, - and _).")
                continue
            clean["key"] = key
        if op not in NO_VALUE_OPS:
            if fname == "integration":
                found = _lookup(Integration.objects, "name", value)
                if found is None:
                    errors.append(f"Condition {n}: unknown integration {value!r}.")
                    continue
                value = found
            elif fname == "owner":
                found = _lookup(get_user_model().objects, "username", value)
                if found is None:
                    errors.append(f"Condition {n}: unknown user {value!r}.")
                    continue
                value = found
            elif fname == "requestable":
                value = _bool(value)
                if value is None:
                    errors.append(f"Condition {n}: requestable is true or false.")
                    continue
            else:
                value = str(value if value is not None else "").strip()
                if not value:
                    errors.append(f"Condition {n}: give a value.")
                    continue
            clean["value"] = value
        out.append(clean)
    if errors:
        raise ValidationError({"conditions": errors})
    return out


def validate_rule(rule: Rule) -> None:
    errors: dict[str, list[str]] = {}
    if rule.target not in Rule.Target.values:
        errors["target"] = [f"Unknown target {rule.target!r}."]
    if rule.match not in Rule.Match.values:
        errors["match"] = [f"Unknown match {rule.match!r}."]
    if rule.scope not in Rule.Scope.values:
        errors["scope"] = [f"Unknown scope {rule.scope!r}."]
    for name, check in (
        ("conditions", lambda: validate_conditions(rule.conditions)),
        ("actions", lambda: validate_changes(rule.target, rule.actions)),
    ):
        if errors.get("target"):
            break
        try:
            setattr(rule, name, check())
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                errors.setdefault(name if key not in ("conditions", "actions") else key, []).extend(
                    messages if key in ("conditions", "actions") else [f"{key}: {m}" for m in messages]
                )
    if errors:
        raise ValidationError(errors)


# -- role implications --


def implication_cycle(role_id: int, implied_role_id: int) -> list[str]:
    """If ``role`` ⇒ ``implied_role`` would close a cycle, the cycle's role names; else []."""
    if role_id == implied_role_id:
        return [str(Role.objects.get(pk=role_id))] * 2
    # A cycle exists iff role_id is reachable from implied_role_id already.
    parents: dict[int, int] = {}
    frontier = [implied_role_id]
    while frontier:
        rows = RoleImplication.objects.filter(role_id__in=frontier).values_list("role_id", "implied_role_id")
        frontier = []
        for src, dst in rows:
            if dst in parents or dst == implied_role_id:
                continue
            parents[dst] = src
            if dst == role_id:
                path = [role_id]
                while path[-1] != implied_role_id:
                    path.append(parents[path[-1]])
                chain = [role_id, *reversed(path)]
                names = dict(
                    (r.pk, str(r)) for r in Role.objects.filter(pk__in=chain).select_related("resource")
                )
                return [names[pk] for pk in chain]
            frontier.append(dst)
    return []
