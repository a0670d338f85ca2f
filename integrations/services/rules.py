"""Rules: conditions over resources or roles, and the changes to make on those that match.

Rules run in ``position`` order. They apply to newly discovered objects after every sync
(:func:`rules_apply_to_new`, called by the sync engine) and, for rules whose scope includes
existing objects, on demand (:func:`rule_apply`) after a :func:`rule_preview`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from governance import audit

from ..models import Integration, Rule
from ..validators import FIELD_LABELS, NO_VALUE_OPS, OP_LABELS, model_for, validate_changes
from .changes import apply_changes, check_policy_actions, differs


def _condition_q(target: str, cond: dict) -> Q:
    fname, op, value = cond["field"], cond["op"], cond.get("value")
    owner = "resource__owner" if target == "roles" else "owner"
    if fname == "integration":
        q = Q(integration_id=value)
        return q if op == "is" else ~q
    if fname == "name":
        lookup = {
            "equals": "iexact",
            "not_equals": "iexact",
            "contains": "icontains",
            "starts_with": "istartswith",
            "ends_with": "iendswith",
        }[op]
        q = Q(**{f"name__{lookup}": value})
        return ~q if op == "not_equals" else q
    if fname == "tag":
        model = model_for(target)
        through = model.tags.through
        q = Q(pk__in=through.objects.filter(tag__name=value).values(f"{model._meta.model_name}_id"))
        return q if op == "has" else ~q
    if fname == "attribute":
        key = cond["key"]
        if op in ("exists", "not_exists"):
            q = Q(attributes__has_key=key)
            return q if op == "exists" else ~q
        lookup = "icontains" if op == "contains" else "iexact"
        q = Q(**{f"attributes__{key}__{lookup}": value})
        return ~q if op == "not_equals" else q
    if fname == "owner":
        if op == "is_empty":
            return Q(**{f"{owner}__isnull": True})
        if op == "is_set":
            return Q(**{f"{owner}__isnull": False})
        q = Q(**{f"{owner}_id" if target != "roles" else "resource__owner_id": value})
        return q if op == "is" else ~q
    if fname == "requestable":
        return Q(requestable=value)
    raise AssertionError(fname)


def conditions_q(target: str, match: str, conditions: list[dict]) -> Q:
    if not conditions:
        return Q()
    qs = [_condition_q(target, c) for c in conditions]
    combined = qs[0]
    for q in qs[1:]:
        combined = combined & q if match == Rule.Match.ALL else combined | q
    return combined


def describe_condition(cond: dict) -> str:
    fname, op = cond["field"], cond["op"]
    subject = f"attribute {cond['key']}" if fname == "attribute" else FIELD_LABELS[fname].lower()
    value = cond.get("value")
    if fname == "integration" and value is not None:
        value = Integration.objects.filter(pk=value).values_list("name", flat=True).first() or value
    if fname == "owner" and value is not None:
        value = get_user_model().objects.filter(pk=value).first() or value
    if fname == "requestable":
        value = "yes" if value else "no"
    text = f"{subject} {OP_LABELS[op]}"
    return text if op in NO_VALUE_OPS else f'{text} "{value}"'


def rule_matches(rule: Rule, base: QuerySet | None = None) -> QuerySet:
    """The present (not removed) objects a rule's conditions select."""
    model = model_for(rule.target)
    qs = base if base is not None else model.objects.all()
    return qs.filter(removed_at=None).filter(conditions_q(rule.target, rule.match, rule.conditions))


@dataclass
class RulePreview:
    matching: int
    changing: int
    sample: list = field(default_factory=list)


def rule_preview(rule: Rule, *, sample: int = 20) -> RulePreview:
    """How many existing objects match the rule, how many it would change, and some of those."""
    matches = rule_matches(rule)
    changing = matches.filter(pk__in=matches.filter(differs(rule.target, rule.actions)).values("pk"))
    related = ["resource", "integration"] if rule.target == "roles" else ["integration"]
    return RulePreview(
        matching=matches.count(),
        changing=changing.count(),
        sample=list(changing.select_related(*related).order_by("name", "pk")[:sample]),
    )


# -- writes -----------------------------------------------------------------------------------------
_FIELDS = ("name", "description", "target", "match", "conditions", "actions", "scope", "enabled", "position")


def rule_create(*, actor, **fields) -> Rule:
    unknown = set(fields) - set(_FIELDS)
    if unknown:
        raise ValidationError({f: "Unknown field." for f in unknown})
    rule = Rule(**fields)
    rule.full_clean()
    check_policy_actions(actor, rule.target, rule.actions)
    with audit.audit_context(actor=actor), transaction.atomic():
        rule.save()
    return rule


def rule_update(*, actor, rule: Rule, **fields) -> Rule:
    for name, value in fields.items():
        if name not in _FIELDS:
            raise ValidationError({name: "Unknown field."})
        setattr(rule, name, value)
    rule.full_clean()
    check_policy_actions(actor, rule.target, rule.actions)
    with audit.audit_context(actor=actor), transaction.atomic():
        rule.save()
    return rule


def rule_set_enabled(*, actor, rule: Rule, enabled: bool) -> Rule:
    return rule_update(actor=actor, rule=rule, enabled=enabled)


def rule_delete(*, actor, rule: Rule) -> None:
    with audit.audit_context(actor=actor), transaction.atomic():
        rule.delete()


def rule_apply(*, actor, rule: Rule) -> int:
    """Apply a rule to the existing objects it matches; returns how many changed."""
    if rule.scope == Rule.Scope.NEW_ONLY:
        raise ValidationError({"scope": "This rule applies to newly discovered objects only."})
    if not rule.enabled:
        raise ValidationError({"enabled": "Enable the rule before applying it."})
    actions = validate_changes(rule.target, rule.actions)
    check_policy_actions(actor, rule.target, actions)
    with audit.audit_context(actor=actor), transaction.atomic():
        matches = rule_matches(rule)
        ids = list(matches.filter(differs(rule.target, actions)).values_list("pk", flat=True).distinct())
        changed = apply_changes(target=rule.target, ids=ids, changes=actions, via=f"rule:{rule.pk}")
        Rule.objects.filter(pk=rule.pk).update(last_applied_at=timezone.now())
        audit.record("rule.apply", obj=rule, details={"matching": matches.count(), "changed": changed})
    return changed


def rules_apply_to_new(
    *, integration: Integration, resource_ids: Iterable[int], role_ids: Iterable[int]
) -> int:
    """Apply every enabled rule, in order, to objects a sync just discovered; returns the changes made.

    The sync engine calls this after each sync with the ids it created. Runs in the caller's
    audit context and transaction; each changed object gets an audit event naming the rule.
    """
    ids = {"resources": list(resource_ids), "roles": list(role_ids)}
    total = 0
    for rule in Rule.objects.filter(enabled=True):
        candidates = ids[rule.target]
        if not candidates:
            continue
        model = model_for(rule.target)
        base = model.objects.filter(integration=integration, pk__in=candidates)
        try:
            actions = validate_changes(rule.target, rule.actions)
        except ValidationError:  # a rule naming a deleted user or workflow is skipped, not fatal
            audit.record("rule.apply", obj=rule, status="error", details={"error": "invalid actions"})
            continue
        matched = list(rule_matches(rule, base).values_list("pk", flat=True).distinct())
        if matched:
            total += apply_changes(target=rule.target, ids=matched, changes=actions, via=f"rule:{rule.pk}")
    return total
