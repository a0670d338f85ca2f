"""Reads of the inventory. Effective settings are resolved here and only here."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet

from governance.models import AuditEvent

from .access import is_admin, manageable_integrations, manageable_roles
from .durations import ALL_DURATIONS
from .models import (
    AccessDecision,
    AccessRequest,
    AccessTicket,
    ApprovalWorkflow,
    Integration,
    Maintainer,
    Permission,
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
    return _implication_chain(role_id, "role_id", "implied_role_id")


def granting_role_ids(role_id: int) -> set[int]:
    """Every role whose holders get ``role_id`` automatically, directly or through a chain."""
    return _implication_chain(role_id, "implied_role_id", "role_id")


def _implication_chain(role_id: int, from_field: str, to_field: str) -> set[int]:
    """The roles reached from ``role_id`` along role implications, one query per step of the chain."""
    seen: set[int] = set()
    frontier = {role_id}
    while frontier:
        step = RoleImplication.objects.filter(**{f"{from_field}__in": frontier})
        frontier = set(step.values_list(to_field, flat=True)) - seen - {role_id}
        seen |= frontier
    return seen


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


# -- access requests ----------------------------------------------------------------------------------------


def requestable_roles(q: str = "") -> QuerySet[Role]:
    """Roles that can be requested: effectively requestable (the rule ``effective_settings`` applies)
    and with an approval workflow somewhere from role to integration, so a request can be decided."""
    roles = Role.objects.filter(
        Q(workflow__isnull=False)
        | Q(resource__workflow__isnull=False)
        | Q(resource__integration__default_workflow__isnull=False),
        requestable=True,
        removed_at__isnull=True,
        resource__requestable=True,
        resource__removed_at__isnull=True,
        resource__integration__requestable=True,
    ).select_related("resource__integration")
    for word in q.split():  # every word somewhere: "corporate directory data-bi-dev"
        roles = roles.filter(
            Q(name__icontains=word)
            | Q(resource__name__icontains=word)
            | Q(resource__integration__name__icontains=word)
        )
    return roles.order_by("resource__integration__name", "resource__name", "name")


def roles_open_to(user) -> QuerySet[Role]:
    """The roles ``user`` may open the request form of and file a request for: the catalogue's
    (:func:`requestable_roles`) and those they manage. Any other role is 404 to them, on the request
    screen as in the API: its description, owner and workflow are not theirs to read."""
    return Role.objects.filter(
        Q(pk__in=requestable_roles().values("pk")) | Q(pk__in=manageable_roles(user).values("pk"))
    )


def visible_access_requests(user) -> QuerySet[AccessRequest]:
    """The access requests ``user`` may see; the screens and the API both ask here.

    Admins see every request. Others see the requests they filed or that give them access,
    those waiting for their approval now, those they decided, those whose tickets they are
    assigned, and every request of an integration they manage.
    """
    if is_admin(user):
        return AccessRequest.objects.all()
    if not (user and user.is_authenticated):
        return AccessRequest.objects.none()
    awaiting = AccessRequest.objects.filter(pending_approvers=user).values("pk")
    decided = AccessDecision.objects.filter(approver=user).values("request_id")
    assigned = AccessTicket.objects.filter(assignee=user).values("request_id")
    return AccessRequest.objects.filter(
        Q(requester=user)
        | Q(beneficiary=user)
        | Q(pk__in=awaiting)
        | Q(pk__in=decided)
        | Q(pk__in=assigned)
        | Q(integration__in=manageable_integrations(user))
    )


def access_request_events(request: AccessRequest):
    """A request's history, oldest first: the audit events of the request itself and of its decisions,
    tickets and permissions."""
    types = ContentType.objects.get_for_models(AccessRequest, AccessDecision, AccessTicket, Permission)
    return (
        AuditEvent.objects.filter(
            Q(object_type=types[AccessRequest], object_id=str(request.pk))
            | Q(
                object_type__in=[types[AccessDecision], types[AccessTicket], types[Permission]],
                details__after__request_id=request.pk,
            )
        )
        .select_related("object_type")
        .order_by("occurred_at", "id")
    )
