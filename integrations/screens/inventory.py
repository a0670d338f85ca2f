"""Resources and roles: their lists and pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.shortcuts import render

from governance.inputs import parse_id
from governance.models import AuditEvent

from .. import services
from ..models import Maintainer, Permission, Resource, Role, RoleImplication
from ..rights import prerequisite_roles
from ..selectors import effective_settings, granting_role_ids
from .common import get_managed, require_manager, style_form
from .forms import MaintainerForm, ResourceSettingsForm, RoleSettingsForm
from .pages import (
    ObjectPage,
    list_table,
    paginate,
    policy_context,
    role_rows,
)
from .tables import HolderTable


def _list(request, target: str, title: str):
    require_manager(request)
    filterset, table = list_table(request, target, empty_text=f"No {target[:-1]} matches these filters.")
    return render(
        request,
        "inventory/list.html",
        {"table": table, "filter": filterset, "nav": target, "title": title, "target": target},
    )


@login_required
def resource_list(request):
    return _list(request, "resources", "Resources")


@login_required
def role_list(request):
    return _list(request, "roles", "Roles")


def grants_for(role_ids: list[int]) -> dict[int, dict[str, list[Role]]]:
    """For each role: the roles whose holders get it automatically, and the roles it gives, transitively.

    One query per level of the implication graph for all the roles together.
    """
    edges: set[tuple[int, int]] = set()
    frontier = set(role_ids)
    seen = set(role_ids)
    while frontier:
        rows = set(
            RoleImplication.objects.filter(
                Q(role_id__in=frontier) | Q(implied_role_id__in=frontier)
            ).values_list("role_id", "implied_role_id")
        )
        edges |= rows
        nxt = {x for e in rows for x in e} - seen
        seen |= nxt
        frontier = nxt
    down: dict[int, set[int]] = {}
    up: dict[int, set[int]] = {}
    for a, b in edges:
        down.setdefault(a, set()).add(b)
        up.setdefault(b, set()).add(a)

    def reach(start: int, graph: dict[int, set[int]]) -> list[int]:
        out, stack = [], [start]
        visited = {start}
        while stack:
            for nxt in graph.get(stack.pop(), ()):
                if nxt not in visited:
                    visited.add(nxt)
                    out.append(nxt)
                    stack.append(nxt)
        return out

    roles = {r.pk: r for r in Role.objects.filter(pk__in=seen).select_related("resource", "integration")}
    result = {}
    for rid in role_ids:
        result[rid] = {
            "granted_by": [roles[i] for i in reach(rid, up) if i in roles],
            "gives": [roles[i] for i in reach(rid, down) if i in roles],
            "direct_granted_by": [roles[i] for i in sorted(up.get(rid, ())) if i in roles],
        }
    return result


def _resource(request, pk: int) -> Resource:
    return get_managed(
        request,
        Resource.objects.select_related("integration", "owner", "workflow", "integration__default_workflow"),
        pk=pk,
    )


def resource_context(request, resource: Resource, **extra) -> dict:
    roles = list(role_rows(Role.objects.filter(resource=resource)).order_by("name"))
    grants = grants_for([r.pk for r in roles])
    stats = Permission.objects.filter(role__resource=resource, ended_at=None).aggregate(
        permissions=Count("pk"),
        accounts=Count("account", distinct=True),
        users=Count("account__user", distinct=True),
    )
    effective = effective_settings(resource)
    settings_form = style_form(ResourceSettingsForm(initial=ResourceSettingsForm.initial_for(resource)))
    return {
        "resource": resource,
        "integration": resource.integration,
        "nav": "resources",
        "effective": effective,
        "roles": [(r, grants[r.pk]) for r in roles],
        "stats": stats,
        "settings_form": settings_form,
        "maintainers": Maintainer.objects.filter(resource=resource).select_related("user", "group"),
        "maintainer_form": style_form(MaintainerForm()),
        "events": AuditEvent.objects.filter(object_type__model="resource", object_id=str(resource.pk))[:10],
        **policy_context(
            resource,
            user=request.user,
            settings_form=settings_form,
            workflow_id=resource.workflow_id,
            effective_workflow=effective.workflow,
        ),
        **extra,
    }


RESOURCE = ObjectPage("inventory/resource.html", "integrations:resource", _resource, resource_context)


resource_detail = RESOURCE.detail()


@login_required
def resource_roles(request, pk: int):
    """The roles of a resource, for a row expanded in a table (htmx)."""
    resource = _resource(request, pk)
    roles = role_rows(Role.objects.filter(resource=resource)).order_by("name")[:50]
    return render(request, "inventory/_resource_roles.html", {"resource": resource, "roles": roles})


resource_settings, resource_workflow = RESOURCE.settings_and_workflow(
    ResourceSettingsForm,
    lambda actor, obj, **changes: services.resource_update(actor=actor, resource=obj, **changes),
)
resource_maintainer_add = RESOURCE.maintainers("resource")


def _role(request, pk: int) -> Role:
    return get_managed(
        request,
        Role.objects.select_related(
            "resource", "integration", "workflow", "resource__owner", "integration__owner"
        ),
        pk=pk,
    )


def role_context(request, role: Role, **extra) -> dict:
    # Who holds it: directly, or through a role that gives it automatically (an implied role).
    holders = Permission.objects.filter(
        role_id__in={role.pk} | granting_role_ids(role.pk), ended_at=None
    ).select_related("account", "account__user", "role__resource")
    table = HolderTable(
        holders.order_by("account__identity", "pk"), empty_text="Nobody holds this role.", role=role
    )
    paginate(request, table)
    effective = effective_settings(role)
    return {
        "role": role,
        "resource": role.resource,
        "integration": role.integration,
        "nav": "roles",
        "effective": effective,
        "grants": grants_for([role.pk])[role.pk],
        "settings_form": style_form(RoleSettingsForm(initial=RoleSettingsForm.initial_for(role))),
        "holders": table,
        **policy_context(
            role, user=request.user, workflow_id=role.workflow_id, effective_workflow=effective.workflow
        ),
        **extra,
    }


ROLE = ObjectPage("inventory/role.html", "integrations:role", _role, role_context)


role_detail = ROLE.detail()

role_settings, role_workflow = ROLE.settings_and_workflow(
    RoleSettingsForm,
    lambda actor, obj, **changes: services.role_update(actor=actor, role=obj, **changes),
)


@login_required
def role_options(request):
    """<option>s of roles matching ``q`` (name or resource), for pickers (htmx)."""
    require_manager(request)
    q = request.GET.get("q", "").strip()
    roles = prerequisite_roles(request.user, None).select_related("resource", "integration")
    integration = parse_id(request.GET.get("integration"))
    if integration is not None:  # a prerequisite picker: that integration's roles
        roles = roles.filter(integration_id=integration)
    if q:
        roles = roles.filter(Q(name__icontains=q) | Q(resource__name__icontains=q))
    return render(
        request, "inventory/_role_options.html", {"roles": roles.order_by("resource__name", "name")[:50]}
    )
