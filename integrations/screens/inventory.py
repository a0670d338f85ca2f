"""Resources and roles: their lists and pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_tables2 import RequestConfig

from governance.models import AuditEvent

from .. import services
from ..access import manageable_resources, manageable_roles
from ..filters import ResourceFilter, RoleFilter
from ..models import Maintainer, Permission, Resource, Role, RoleImplication
from ..selectors import effective_settings
from .common import add_errors, get_managed, require_manager, style_filter, style_form, toast
from .forms import MaintainerForm, PrerequisiteForm, ResourceSettingsForm, RoleSettingsForm, WorkflowForm
from .integrations import _prerequisites, _workflow_steps, per_page, resource_queryset
from .tables import HolderTable, ResourceTable, RoleTable


def role_queryset(qs):
    holders = (
        Permission.objects.filter(role=OuterRef("pk"), ended_at=None)
        .order_by()
        .values("role")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        qs.select_related("resource", "integration", "workflow")
        .prefetch_related("tags")
        .annotate(holders=Coalesce(Subquery(holders, output_field=IntegerField()), 0))
        # By id columns, not through the related models' default orderings: index order, no join sort.
        .order_by("resource_id", "name")
    )


def _filtered(filterset):
    return filterset.qs if filterset.is_bound and filterset.is_valid() else filterset.queryset


@login_required
def resource_list(request):
    require_manager(request)
    base = resource_queryset(manageable_resources(request.user).filter(removed_at=None))
    filterset = ResourceFilter(request.GET or None, queryset=base, request=request)
    style_filter(filterset)
    table = ResourceTable(_filtered(filterset), empty_text="No resource matches these filters.")
    RequestConfig(request, paginate={"per_page": per_page(request)}).configure(table)
    return render(
        request,
        "inventory/list.html",
        {
            "table": table,
            "filter": filterset,
            "nav": "resources",
            "title": "Resources",
            "target": "resources",
        },
    )


@login_required
def role_list(request):
    require_manager(request)
    base = role_queryset(manageable_roles(request.user).filter(removed_at=None))
    filterset = RoleFilter(request.GET or None, queryset=base, request=request)
    style_filter(filterset)
    table = RoleTable(_filtered(filterset), empty_text="No role matches these filters.")
    RequestConfig(request, paginate={"per_page": per_page(request)}).configure(table)
    return render(
        request,
        "inventory/list.html",
        {"table": table, "filter": filterset, "nav": "roles", "title": "Roles", "target": "roles"},
    )


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
    roles = list(role_queryset(Role.objects.filter(resource=resource)).order_by("name"))
    grants = grants_for([r.pk for r in roles])
    stats = Permission.objects.filter(role__resource=resource, ended_at=None).aggregate(
        permissions=Count("pk"),
        accounts=Count("account", distinct=True),
        users=Count("account__user", distinct=True),
    )
    context = {
        "resource": resource,
        "integration": resource.integration,
        "nav": "resources",
        "effective": effective_settings(resource),
        "roles": [(r, grants[r.pk]) for r in roles],
        "stats": stats,
        "settings_form": style_form(ResourceSettingsForm(initial=ResourceSettingsForm.initial_for(resource))),
        "workflow_form": style_form(WorkflowForm(initial={"workflow": resource.workflow_id})),
        "workflow_steps": _workflow_steps(effective_settings(resource).workflow),
        "maintainers": Maintainer.objects.filter(resource=resource).select_related("user", "group"),
        "maintainer_form": style_form(MaintainerForm()),
        "prerequisites": _prerequisites(resource=resource),
        "prerequisite_form": PrerequisiteForm(),
        "events": AuditEvent.objects.filter(object_type__model="resource", object_id=str(resource.pk))[:10],
        "section": extra.pop("section", None),
    }
    context.update(extra)
    return context


@login_required
def resource_detail(request, pk: int):
    resource = _resource(request, pk)
    return render(request, "inventory/resource.html", resource_context(request, resource))


@login_required
def resource_roles(request, pk: int):
    """The roles of a resource, for a row expanded in a table (htmx)."""
    resource = _resource(request, pk)
    roles = role_queryset(Role.objects.filter(resource=resource)).order_by("name")[:50]
    return render(request, "inventory/_resource_roles.html", {"resource": resource, "roles": roles})


@login_required
@require_POST
def resource_settings(request, pk: int):
    resource = _resource(request, pk)
    form = style_form(ResourceSettingsForm(request.POST))
    if form.is_valid():
        try:
            services.resource_update(actor=request.user, resource=resource, **form.cleaned_data)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            toast(request, f"Settings of {resource.name} saved.")
            return redirect(reverse("integrations:resource", args=[resource.pk]) + "#settings")
    fresh = _resource(request, pk)
    return render(
        request,
        "inventory/resource.html",
        resource_context(request, fresh, settings_form=form, section="settings"),
        status=400,
    )


@login_required
@require_POST
def resource_workflow(request, pk: int):
    resource = _resource(request, pk)
    form = style_form(WorkflowForm(request.POST))
    if form.is_valid():
        services.resource_update(
            actor=request.user, resource=resource, workflow=form.cleaned_data["workflow"]
        )
        toast(request, "Approval workflow saved.")
        return redirect(reverse("integrations:resource", args=[resource.pk]) + "#workflow")
    return render(
        request,
        "inventory/resource.html",
        resource_context(request, resource, workflow_form=form),
        status=400,
    )


@login_required
@require_POST
def resource_maintainer_add(request, pk: int):
    resource = _resource(request, pk)
    form = style_form(MaintainerForm(request.POST))
    if form.is_valid():
        try:
            services.maintainer_add(actor=request.user, resource=resource, **form.cleaned_data)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            toast(
                request,
                f"{form.cleaned_data['user'] or form.cleaned_data['group']} now maintains {resource}.",
            )
            return redirect(reverse("integrations:resource", args=[resource.pk]) + "#maintainers")
    return render(
        request,
        "inventory/resource.html",
        resource_context(request, resource, maintainer_form=form, section="maintainers"),
        status=400,
    )


def _role(request, pk: int) -> Role:
    return get_managed(
        request,
        Role.objects.select_related(
            "resource", "integration", "workflow", "resource__owner", "integration__owner"
        ),
        pk=pk,
    )


def role_context(request, role: Role, **extra) -> dict:
    holders = Permission.objects.filter(role=role, ended_at=None).select_related("account", "account__user")
    table = HolderTable(holders, empty_text="Nobody holds this role.")
    RequestConfig(request, paginate={"per_page": per_page(request)}).configure(table)
    context = {
        "role": role,
        "resource": role.resource,
        "integration": role.integration,
        "nav": "roles",
        "effective": effective_settings(role),
        "grants": grants_for([role.pk])[role.pk],
        "settings_form": style_form(RoleSettingsForm(initial=RoleSettingsForm.initial_for(role))),
        "workflow_form": style_form(WorkflowForm(initial={"workflow": role.workflow_id})),
        "workflow_steps": _workflow_steps(effective_settings(role).workflow),
        "prerequisites": _prerequisites(role=role),
        "prerequisite_form": PrerequisiteForm(),
        "holders": table,
        "section": extra.pop("section", None),
    }
    context.update(extra)
    return context


@login_required
def role_detail(request, pk: int):
    role = _role(request, pk)
    return render(request, "inventory/role.html", role_context(request, role))


@login_required
@require_POST
def role_settings(request, pk: int):
    role = _role(request, pk)
    form = style_form(RoleSettingsForm(request.POST))
    if form.is_valid():
        try:
            services.role_update(actor=request.user, role=role, **form.cleaned_data)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            toast(request, f"Settings of {role.name} saved.")
            return redirect(reverse("integrations:role", args=[role.pk]) + "#settings")
    return render(
        request,
        "inventory/role.html",
        role_context(request, _role(request, pk), settings_form=form, section="settings"),
        status=400,
    )


@login_required
@require_POST
def role_workflow(request, pk: int):
    role = _role(request, pk)
    form = style_form(WorkflowForm(request.POST))
    if form.is_valid():
        services.role_update(actor=request.user, role=role, workflow=form.cleaned_data["workflow"])
        toast(request, "Approval workflow saved.")
        return redirect(reverse("integrations:role", args=[role.pk]) + "#workflow")
    return render(request, "inventory/role.html", role_context(request, role, workflow_form=form), status=400)


@login_required
def role_options(request):
    """<option>s of roles matching ``q`` (name or resource), for pickers (htmx)."""
    require_manager(request)
    q = request.GET.get("q", "").strip()
    roles = manageable_roles(request.user).filter(removed_at=None).select_related("resource", "integration")
    if q:
        roles = roles.filter(Q(name__icontains=q) | Q(resource__name__icontains=q))
    return render(
        request, "inventory/_role_options.html", {"roles": roles.order_by("resource__name", "name")[:50]}
    )
