"""Set-based changes over many integrations, resources or roles: what rules and bulk actions apply.

A change set is a dict of actions: ``owner`` (user id), ``maintainers`` (user ids, added),
``workflow`` (workflow id, or None to inherit), ``requestable`` (bool), ``tags`` (names, added)
and ``allowed_durations`` (duration keys; the objects then override their durations).

Objects are changed batch by batch with one statement per action and batch, never one per
object, and each object that actually changed gets its own audit event (``record_many``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from governance import audit

from ..models import ApprovalWorkflow, Maintainer
from ..rights import can_write_policy_rules, policy_editable
from ..validators import model_for, validate_changes

BATCH_SIZE = 5000


def _workflow_field(target: str) -> str:
    return "default_workflow_id" if target == "integrations" else "workflow_id"


def describe(changes: dict[str, Any]) -> list[str]:
    """Human-readable lines for a (validated) change set."""
    from ..durations import label

    lines = []
    users = {u.pk: str(u) for u in get_user_model().objects.filter(
        pk__in=[changes.get("owner"), *changes.get("maintainers", [])]
    )}  # fmt: skip
    if "owner" in changes:
        lines.append(f"Owner → {users.get(changes['owner'], changes['owner'])}")
    if "maintainers" in changes:
        lines.append("Add maintainers: " + ", ".join(users.get(u, str(u)) for u in changes["maintainers"]))
    if "workflow" in changes:
        wf = ApprovalWorkflow.objects.filter(pk=changes["workflow"]).first() if changes["workflow"] else None
        lines.append(f"Approval workflow → {wf or 'inherited'}")
    if "requestable" in changes:
        lines.append(f"Requestable → {'yes' if changes['requestable'] else 'no'}")
    if "tags" in changes:
        lines.append("Add tags: " + ", ".join(changes["tags"]))
    if "allowed_durations" in changes:
        lines.append("Allowed durations → " + ", ".join(label(d) for d in changes["allowed_durations"]))
    return lines


def differs(target: str, changes: dict[str, Any]) -> Q:
    """Objects on which at least one of the changes would change something."""
    model = model_for(target)
    q = Q(pk__in=[])
    if "owner" in changes:
        q |= ~Q(owner_id=changes["owner"])
    if "workflow" in changes:
        field = _workflow_field(target).removesuffix("_id")
        q |= (
            Q(**{f"{field}__isnull": False})
            if changes["workflow"] is None
            else ~Q(**{field: changes["workflow"]})
        )
    if "requestable" in changes:
        q |= ~Q(requestable=changes["requestable"])
    if "allowed_durations" in changes:
        q |= Q(override_allowed_durations=False) | ~Q(allowed_durations=changes["allowed_durations"])
    if "tags" in changes:
        through = model.tags.through
        fk = f"{model._meta.model_name}_id"
        for name in changes["tags"]:
            q |= ~Q(pk__in=through.objects.filter(tag__name=name).values(fk))
    if "maintainers" in changes:
        scope = "integration" if target == "integrations" else "resource"
        for user_id in changes["maintainers"]:
            q |= ~Q(
                pk__in=Maintainer.objects.filter(user_id=user_id, **{f"{scope}__isnull": False}).values(scope)
            )
    return q


def _repr_fields(target: str) -> list[str]:
    if target == "roles":
        return ["name", "resource__name", "integration_id"]
    if target == "resources":
        return ["name", "integration_id"]
    return ["name", "id"]


def _repr(target: str, row: dict) -> str:
    return f"{row['resource__name']} · {row['name']}" if target == "roles" else row["name"]


def apply_changes(
    *,
    target: str,
    ids: Sequence[int] | QuerySet,
    changes: dict[str, Any],
    via: str,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Apply a validated change set to the objects ``ids`` of ``target``; returns how many changed.

    Runs in the caller's audit context (its actor and correlation id) and transaction.
    """
    model = model_for(target)
    if isinstance(ids, QuerySet):
        ids = list(ids.values_list("pk", flat=True))
    ids = sorted(set(ids))
    if not ids:
        return 0
    label = model._meta.model_name
    wf_field = _workflow_field(target)
    scalar = {
        "owner": "owner_id",
        "workflow": wf_field,
        "requestable": "requestable",
    }
    changed_total = 0
    now = timezone.now()
    tag_ids: dict[str, int] = {}
    if "tags" in changes:
        from . import tags_for

        tag_ids = {t.name: t.pk for t in tags_for(changes["tags"])}
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        fields = [f for k, f in scalar.items() if k in changes]
        if "allowed_durations" in changes:
            fields += ["override_allowed_durations", "allowed_durations"]
        rows = {
            r["pk"]: r
            for r in model.objects.filter(pk__in=batch).values("pk", *_repr_fields(target), *fields)
        }
        per_object: dict[int, dict[str, dict]] = {}

        def note(pk: int, field: str, before, after, per_object=per_object) -> None:
            per_object.setdefault(pk, {})[field] = {"from": before, "to": after}

        # One UPDATE per batch for every scalar change together, over the objects where any differs.
        updates: dict[str, Any] = {}
        for key, field in scalar.items():
            if key not in changes:
                continue
            value = updates[field] = changes[key]
            for pk, r in rows.items():
                if r[field] != value:
                    note(pk, field, r[field], value)
        if "allowed_durations" in changes:
            value = changes["allowed_durations"]
            updates.update(override_allowed_durations=True, allowed_durations=value)
            for pk, r in rows.items():
                if not r["override_allowed_durations"] or r["allowed_durations"] != value:
                    before = r["allowed_durations"] if r["override_allowed_durations"] else None
                    note(pk, "allowed_durations", before, value)
        if updates and per_object:
            model.objects.filter(pk__in=sorted(per_object)).update(**updates, updated_at=now)
        if "tags" in changes:
            through = model.tags.through
            fk = f"{label}_id"
            have = set(
                through.objects.filter(**{f"{fk}__in": batch}, tag_id__in=tag_ids.values()).values_list(
                    fk, "tag_id"
                )
            )
            new = [(pk, tid) for pk in rows for tid in tag_ids.values() if (pk, tid) not in have]
            if new:
                through.objects.bulk_create(
                    [through(**{fk: pk, "tag_id": tid}) for pk, tid in new],
                    ignore_conflicts=True,
                    batch_size=batch_size,
                )
                names = {v: k for k, v in tag_ids.items()}
                added: dict[int, list[str]] = {}
                for pk, tid in new:
                    added.setdefault(pk, []).append(names[tid])
                for pk, tags in added.items():
                    per_object.setdefault(pk, {})["tags"] = {"added": sorted(tags)}
        if "maintainers" in changes:
            scope = "integration" if target == "integrations" else "resource"
            have = set(
                Maintainer.objects.filter(
                    **{f"{scope}_id__in": batch}, user_id__in=changes["maintainers"]
                ).values_list(f"{scope}_id", "user_id")
            )
            new = [(pk, uid) for pk in rows for uid in changes["maintainers"] if (pk, uid) not in have]
            if new:
                Maintainer.objects.bulk_create(
                    [Maintainer(**{f"{scope}_id": pk, "user_id": uid}) for pk, uid in new],
                    ignore_conflicts=True,
                    batch_size=batch_size,
                )
                added_m: dict[int, list[int]] = {}
                for pk, uid in new:
                    added_m.setdefault(pk, []).append(uid)
                for pk, users in added_m.items():
                    per_object.setdefault(pk, {})["maintainers"] = {"added": sorted(users)}
        if per_object:
            audit.record_many(
                {
                    "action": f"{label}.update",
                    "object_type": model,
                    "object_id": pk,
                    "object_repr": _repr(target, rows[pk]),
                    "integration_id": rows[pk]["id"]
                    if target == "integrations"
                    else rows[pk]["integration_id"],
                    "details": {"changes": diff, "via": via},
                }
                for pk, diff in per_object.items()
            )
        changed_total += len(per_object)
        if progress:
            progress(min(start + batch_size, len(ids)), len(ids))
    return changed_total


POLICY_ACTIONS = ("owner", "workflow")


def check_policy_actions(actor, target: str, changes: dict, ids: Iterable[int] | None = None) -> None:
    """Refuse a change set that sets an owner or a workflow where ``actor`` may not (``access``'s rule):
    on ``ids`` of ``target`` (a bulk action), or on whatever a rule will match (``ids`` None). ``actor``
    None is the portal itself applying what an admin set up."""
    keys = [k for k in POLICY_ACTIONS if k in (changes or {})]
    if not keys or actor is None:
        return
    what = " and ".join(keys)
    if ids is None:
        if not can_write_policy_rules(actor):
            raise PermissionDenied(f"Only admins may write rules that set the {what}.")
        return
    model = model_for(target)
    editable = policy_editable(actor, model).values("pk")
    if model.objects.filter(pk__in=list(ids)).exclude(pk__in=editable).exists():
        raise PermissionDenied(
            f"You may not change the {what} of some of these {target}: only admins, and the owner of an "
            "integration for its resources and roles, may."
        )


def apply_changes_audited(
    *, actor, target: str, ids: Iterable[int], changes: dict, via: str, progress=None
) -> int:
    """Validate and apply a change set as ``actor`` in one transaction."""
    changes = validate_changes(target, changes)
    ids = list(ids)
    check_policy_actions(actor, target, changes, ids)
    with audit.audit_context(actor=actor), transaction.atomic():
        return apply_changes(target=target, ids=list(ids), changes=changes, via=via, progress=progress)


__all__ = [
    "apply_changes",
    "apply_changes_audited",
    "check_policy_actions",
    "describe",
    "differs",
]
