"""Reads of the inventory. Effective settings are resolved here and only here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections, router
from django.db.models import Count, Q, QuerySet

from .durations import ALL_DURATIONS
from .models import (
    UNCORRELATED,
    Account,
    ApprovalWorkflow,
    Integration,
    Maintainer,
    Resource,
    Role,
    RoleImplication,
)


@dataclass(frozen=True)
class EffectiveSettings:
    """What applies to a role (or a resource, or an integration) after inheritance.

    Each ``*_from`` names the level the value comes from: ``role``, ``resource``,
    ``integration`` or ``default``.
    """

    workflow: ApprovalWorkflow | None
    workflow_from: str
    allowed_durations: list[str]
    durations_from: str
    requestable: bool
    requestable_reason: str
    owner: object | None
    owner_from: str
    maintainers: list[Maintainer] = field(default_factory=list)


def _levels(obj) -> list[tuple[str, object]]:
    """The inheritance chain of ``obj``, most specific first."""
    if isinstance(obj, Role):
        return [("role", obj), ("resource", obj.resource), ("integration", obj.resource.integration)]
    if isinstance(obj, Resource):
        return [("resource", obj), ("integration", obj.integration)]
    if isinstance(obj, Integration):
        return [("integration", obj)]
    raise TypeError(f"effective settings of a {type(obj).__name__}?")


def effective_settings(obj: Role | Resource | Integration) -> EffectiveSettings:
    """Resolve workflow, allowed durations, requestable and owner from role → resource → integration."""
    levels = _levels(obj)

    workflow, workflow_from = None, "default"
    for name, level in levels:
        wf = level.default_workflow if name == "integration" else level.workflow
        if wf is not None:
            workflow, workflow_from = wf, name
            break

    durations, durations_from = list(getattr(settings, "DEFAULT_ALLOWED_DURATIONS", ALL_DURATIONS)), "default"
    for name, level in levels:
        if level.override_allowed_durations:
            durations, durations_from = list(level.allowed_durations), name
            break

    requestable, reason = True, "requestable"
    for name, level in reversed(levels):  # the broadest "no" explains best
        if not level.requestable:
            requestable, reason = False, f"the {name} is not requestable"
            break
        if name != "integration" and level.removed_at is not None:
            requestable, reason = False, f"the {name} was removed from the application"
            break

    owner, owner_from = None, "default"
    for name, level in levels:
        if name != "role" and level.owner_id is not None:
            owner, owner_from = level.owner, name
            break

    scopes = Q(integration=levels[-1][1])
    if len(levels) > 1:
        scopes |= Q(resource=levels[-2][1])
    maintainers = list(Maintainer.objects.filter(scopes).select_related("user", "group"))

    return EffectiveSettings(
        workflow=workflow,
        workflow_from=workflow_from,
        allowed_durations=durations,
        durations_from=durations_from,
        requestable=requestable,
        requestable_reason=reason,
        owner=owner,
        owner_from=owner_from,
        maintainers=maintainers,
    )


def workflow_usage(workflow: ApprovalWorkflow) -> dict[str, object]:
    """What names ``workflow`` as its own: integrations (default workflow), resources and roles."""
    return {
        "integrations": Integration.objects.filter(default_workflow=workflow).order_by("name"),
        "resources": Resource.objects.filter(workflow=workflow)
        .select_related("integration")
        .order_by("integration__name", "name"),
        "roles": Role.objects.filter(workflow=workflow)
        .select_related("resource__integration")
        .order_by("resource__integration__name", "resource__name", "name"),
    }


def implied_role_ids(role_id: int) -> set[int]:
    """Every role that holding ``role_id`` gives, directly or through a chain."""
    return _implication_reach([role_id], "role", "implied_role")[role_id]


def granting_role_ids(role_id: int) -> set[int]:
    """Every role whose holders get ``role_id`` automatically, directly or through a chain."""
    return granting_roles([role_id])[role_id]


def granting_roles(role_ids: Iterable[int]) -> dict[int, set[int]]:
    """For each of ``role_ids``: every role whose holders get it automatically, directly or through a
    chain. One query for all the roles together, however long the chains."""
    return _implication_reach(role_ids, "implied_role", "role")


def _implication_reach(role_ids: Iterable[int], from_field: str, to_field: str) -> dict[int, set[int]]:
    """For each of ``role_ids``, the roles reached from it along role implications (itself excluded): one
    recursive query (``UNION`` keeps each pair once, so a cycle stored before it was refused still ends)."""
    starts = sorted(set(role_ids))
    reached: dict[int, set[int]] = {start: set() for start in starts}
    if not starts:
        return reached
    connection = connections[router.db_for_read(RoleImplication)]
    quote, meta = connection.ops.quote_name, RoleImplication._meta
    table = quote(meta.db_table)
    source, target = (quote(meta.get_field(name).column) for name in (from_field, to_field))
    query = (
        f"WITH RECURSIVE reach (origin, reached) AS ("
        f" SELECT {source}, {target} FROM {table} WHERE {source} IN ({', '.join(['%s'] * len(starts))})"
        f" UNION SELECT reach.origin, i.{target} FROM reach JOIN {table} i ON i.{source} = reach.reached"
        f") SELECT origin, reached FROM reach"
    )
    with connection.cursor() as cursor:
        cursor.execute(query, starts)
        for start, role in cursor.fetchall():
            if role != start:
                reached[start].add(role)
    return reached


def uncorrelated_accounts(integration: Integration | int | None = None) -> QuerySet[Account]:
    """Accounts nobody is known to hold: present, linked to no person, not a service account (the partial
    index ``account_uncorrelated_idx`` holds exactly these). ``integration``: of that one only."""
    accounts = Account.objects.filter(UNCORRELATED)
    if integration is not None:
        accounts = accounts.filter(integration_id=getattr(integration, "pk", integration))
    return accounts


def uncorrelated_counts(integration_ids) -> dict[int, int]:
    """How many uncorrelated accounts each of these integrations has (absent: none), in one grouped query
    answered from the partial index."""
    rows = (
        uncorrelated_accounts()
        .filter(integration_id__in=list(integration_ids))
        .order_by()
        .values("integration_id")
        .annotate(n=Count("*"))
        .values_list("integration_id", "n")
    )
    return dict(rows)
