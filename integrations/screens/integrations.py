"""Integrations: the list (home of admins), the integration page and its sections, add, sync, delete."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, IntegerField, OuterRef, Prefetch, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_tables2 import RequestConfig

from governance.models import AuditEvent, Job

from .. import catalogue, services
from ..access import is_admin, manageable_integrations, manageable_resources
from ..filters import IntegrationFilter, ResourceFilter
from ..models import (
    Account,
    ApprovalStep,
    Integration,
    Maintainer,
    Permission,
    PrerequisitePermission,
    Resource,
    Role,
)
from ..services.prerequisites import prerequisite_add, prerequisite_remove
from .common import (
    add_errors,
    get_managed,
    manages_integrations,
    require_admin,
    style_filter,
    style_form,
    toast,
)
from .forms import (
    FLAG_FIELDS,
    FLAG_LABELS,
    AddIntegrationForm,
    ConnectionForm,
    DeleteForm,
    IntegrationSettingsForm,
    MaintainerForm,
    PrerequisiteForm,
    WorkflowForm,
)
from .jobs import latest_sync, start_sync
from .tables import IntegrationTable, ResourceTable

PER_PAGE = 25


def per_page(request, default: int = PER_PAGE) -> int:
    try:
        return max(1, min(int(request.GET.get("per_page", default)), 500))
    except ValueError:
        return default


def integration_queryset(user):
    resources = (
        Resource.objects.filter(integration=OuterRef("pk"), removed_at=None)
        .order_by()
        .values("integration")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        manageable_integrations(user)
        .select_related("owner", "default_workflow")
        .annotate(resources_count=Coalesce(Subquery(resources, output_field=IntegerField()), 0))
    )


def resource_queryset(qs):
    roles = (
        Role.objects.filter(resource=OuterRef("pk"), removed_at=None)
        .order_by()
        .values("resource")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        qs.select_related("integration", "owner")
        .prefetch_related("tags")
        .annotate(roles_count=Coalesce(Subquery(roles, output_field=IntegerField()), 0))
        .order_by("integration_id", "name")  # the (integration, name) index
    )


@login_required
def home(request):
    if manages_integrations(request.user):
        return integration_list(request)
    if manageable_resources(request.user).exists():
        return redirect("integrations:resources")
    raise PermissionDenied("You do not own or maintain any integration or resource.")


@login_required
def integration_list(request):
    if not manages_integrations(request.user):
        raise PermissionDenied("You do not own or maintain any integration.")
    filterset = IntegrationFilter(
        request.GET or None, queryset=integration_queryset(request.user), request=request
    )
    style_filter(filterset)
    qs = filterset.qs if filterset.is_bound and filterset.is_valid() else filterset.queryset
    table = IntegrationTable(
        qs, empty_text="No integration matches. Add one to start governing an application."
    )
    RequestConfig(request, paginate={"per_page": per_page(request)}).configure(table)
    return render(
        request,
        "integrations/list.html",
        {"table": table, "filter": filterset, "nav": "integrations", "is_admin": is_admin(request.user)},
    )


def _integration(request, pk: int) -> Integration:
    return get_managed(
        request, Integration.objects.select_related("owner", "default_workflow", "agent"), pk=pk
    )


def _connection_context(integration: Integration) -> dict:
    try:
        spec = integration.connector.spec
    except ValidationError:
        return {"secrets": [], "spec": None}
    stored = integration.connection_secrets or {}
    return {"spec": spec, "secrets": [(k, k in stored) for k in spec.secret_keys]}


def _workflow_steps(workflow):
    if workflow is None:
        return []
    return list(
        ApprovalStep.objects.filter(workflow=workflow).prefetch_related("approvers__user", "approvers__group")
    )


def _prerequisites(**scope):
    return PrerequisitePermission.objects.filter(**scope).prefetch_related(
        Prefetch("alternatives", queryset=Role.objects.select_related("resource", "integration"))
    )


def integration_context(request, integration: Integration, **extra) -> dict:
    resources = resource_queryset(Resource.objects.filter(integration=integration, removed_at=None))
    rfilter = ResourceFilter(request.GET or None, queryset=resources, request=request)
    rqs = rfilter.qs if rfilter.is_bound and rfilter.is_valid() else resources
    table = ResourceTable(
        rqs, empty_text="No resources yet. Sync the integration to discover them.", exclude=("integration",)
    )
    RequestConfig(request, paginate={"per_page": per_page(request, 10)}).configure(table)
    counts = {
        "resources": Resource.objects.filter(integration=integration, removed_at=None).count(),
        "roles": Role.objects.filter(integration=integration, removed_at=None).count(),
        "accounts": Account.objects.filter(integration=integration, removed_at=None).count(),
        "permissions": Permission.objects.filter(integration=integration, ended_at=None).count(),
    }
    context = {
        "integration": integration,
        "nav": "integrations",
        "counts": counts,
        "flags": [(FLAG_LABELS[f], getattr(integration, f)) for f in FLAG_FIELDS],
        "settings_form": style_form(
            IntegrationSettingsForm(initial=IntegrationSettingsForm.initial_for(integration))
        ),
        "workflow_form": style_form(WorkflowForm(initial={"workflow": integration.default_workflow_id})),
        "workflow_steps": _workflow_steps(integration.default_workflow),
        "connection_form": None,
        "maintainers": Maintainer.objects.filter(integration=integration).select_related("user", "group"),
        "maintainer_form": style_form(MaintainerForm()),
        "prerequisites": _prerequisites(integration=integration),
        "prerequisite_form": PrerequisiteForm(),
        "job": latest_sync(integration),
        "syncs": Job.objects.filter(kind="sync", integration_id=integration.pk).order_by("-created_at")[:5],
        "events": AuditEvent.objects.filter(integration_id=integration.pk)[:15],
        "resource_table": table,
        "resource_filter": rfilter,
        "section": extra.pop("section", None),
        **_connection_context(integration),
    }
    if context["connection_form"] is None:
        import json

        context["connection_form"] = style_form(
            ConnectionForm(
                initial={
                    "config": json.dumps(integration.connection_config, indent=2),
                    "connector_attributes": json.dumps(integration.connector_attributes, indent=2)
                    if integration.connector_attributes
                    else "",
                },
                secret_keys=[k for k, _ in context["secrets"]],
            )
        )
    context.update(extra)
    return context


@login_required
def integration_detail(request, pk: int):
    integration = _integration(request, pk)
    return render(request, "integrations/detail.html", integration_context(request, integration))


def _rerender(request, integration, status=400, **forms):
    """The integration page again with a form's errors, opened at its section."""
    fresh = _integration(request, integration.pk)
    return render(
        request, "integrations/detail.html", integration_context(request, fresh, **forms), status=status
    )


def _back(integration, anchor: str = ""):
    return redirect(reverse("integrations:detail", args=[integration.pk]) + (f"#{anchor}" if anchor else ""))


@login_required
@require_POST
def integration_settings(request, pk: int):
    integration = _integration(request, pk)
    form = style_form(IntegrationSettingsForm(request.POST))
    if form.is_valid():
        try:
            services.integration_update(actor=request.user, integration=integration, **form.cleaned_data)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            toast(request, f"Settings of {integration.name} saved.")
            return _back(integration, "settings")
    return _rerender(request, integration, settings_form=form, section="settings")


@login_required
@require_POST
def integration_workflow(request, pk: int):
    integration = _integration(request, pk)
    form = style_form(WorkflowForm(request.POST))
    if form.is_valid():
        services.integration_update(
            actor=request.user, integration=integration, default_workflow=form.cleaned_data["workflow"]
        )
        toast(request, "Approval workflow saved.")
        return _back(integration, "workflow")
    return _rerender(request, integration, workflow_form=form, section="workflow")


@login_required
@require_POST
def integration_connection(request, pk: int):
    integration = _integration(request, pk)
    secret_keys = [k for k, _ in _connection_context(integration)["secrets"]]
    form = style_form(ConnectionForm(request.POST, secret_keys=secret_keys))
    if form.is_valid():
        try:
            services.integration_update(
                actor=request.user,
                integration=integration,
                connection_config=form.merged_config(),
                connector_attributes=form.cleaned_data["connector_attributes"],
            )
        except ValidationError as exc:
            add_errors(form, exc, rename={"connection_config": "config"})
        else:
            toast(request, "Connection saved. Test it to check it works.")
            return _back(integration, "connection")
    return _rerender(request, integration, connection_form=form, section="connection")


@login_required
@require_POST
def integration_test(request, pk: int):
    integration = _integration(request, pk)
    ok, message = services.integration_test_connection(actor=request.user, integration=integration)
    if request.htmx:
        return render(request, "integrations/_test_result.html", {"ok": ok, "message": message})
    toast(request, message if ok else f"Connection failed: {message}", "success" if ok else "error")
    return _back(integration, "connection")


@login_required
@require_POST
def maintainer_add(request, pk: int):
    integration = _integration(request, pk)
    form = style_form(MaintainerForm(request.POST))
    if form.is_valid():
        try:
            services.maintainer_add(actor=request.user, integration=integration, **form.cleaned_data)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            toast(
                request,
                f"{form.cleaned_data['user'] or form.cleaned_data['group']} now maintains {integration}.",
            )
            return _back(integration, "maintainers")
    return _rerender(request, integration, maintainer_form=form, section="maintainers")


@login_required
@require_POST
def maintainer_remove(request, pk: int):
    maintainer = (
        Maintainer.objects.select_related("integration", "resource", "user", "group").filter(pk=pk).first()
    )
    if maintainer is None:
        raise Http404("No such maintainer.")
    scope = maintainer.integration or maintainer.resource
    if not get_managed(request, type(scope).objects.all(), pk=scope.pk):
        raise PermissionDenied
    services.maintainer_remove(actor=request.user, maintainer=maintainer)
    toast(request, f"{maintainer.user or maintainer.group} no longer maintains {scope}.")
    url = "integrations:detail" if maintainer.integration_id else "integrations:resource"
    return redirect(reverse(url, args=[scope.pk]) + "#maintainers")


def scope_of(kind: str, pk: int, request):
    model = {"integration": Integration, "resource": Resource, "role": Role}.get(kind)
    if model is None:
        raise Http404
    return get_managed(request, model.objects.all(), pk=pk)


def scope_url(kind: str, obj) -> str:
    name = {
        "integration": "integrations:detail",
        "resource": "integrations:resource",
        "role": "integrations:role",
    }[kind]
    return reverse(name, args=[obj.pk]) + "#prerequisites"


@login_required
@require_POST
def prerequisite_create(request, kind: str, pk: int):
    obj = scope_of(kind, pk, request)
    form = PrerequisiteForm(request.POST)
    if form.is_valid():
        try:
            prerequisite_add(
                actor=request.user, alternatives=form.cleaned_data["alternatives"], **{kind: obj}
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            toast(request, "Prerequisite added.")
            return redirect(scope_url(kind, obj))
    errors = "; ".join(e for errs in form.errors.values() for e in errs)
    toast(request, f"Prerequisite not added: {errors}", "error")
    return redirect(scope_url(kind, obj))


@login_required
@require_POST
def prerequisite_delete(request, pk: int):
    prerequisite = PrerequisitePermission.objects.filter(pk=pk).first()
    if prerequisite is None:
        raise Http404
    kind = "role" if prerequisite.role_id else "resource" if prerequisite.resource_id else "integration"
    obj = scope_of(kind, getattr(prerequisite, f"{kind}_id"), request)
    prerequisite_remove(actor=request.user, prerequisite=prerequisite)
    toast(request, "Prerequisite removed.")
    return redirect(scope_url(kind, obj))


@login_required
@require_POST
def integration_sync(request, pk: int):
    integration = _integration(request, pk)
    job = start_sync(actor=request.user, integration=integration)
    if job.status == Job.Status.SKIPPED:
        toast(request, "A sync of this integration is already running.", "warning")
    else:
        toast(request, "Sync started.")
    if request.htmx:
        return render(
            request, "integrations/_sync.html", {"integration": integration, "job": latest_sync(integration)}
        )
    return _back(integration, "sync")


@login_required
def integration_sync_status(request, pk: int):
    integration = _integration(request, pk)
    return render(
        request, "integrations/_sync.html", {"integration": integration, "job": latest_sync(integration)}
    )


@login_required
@require_POST
def integration_sync_cancel(request, pk: int):
    from governance.jobs import job_cancel

    integration = _integration(request, pk)
    job = latest_sync(integration)
    if job and not job.is_finished:
        job_cancel(actor=request.user, job=job)
        toast(request, "Cancelling the sync.", "warning")
    return _back(integration, "sync")


@login_required
def integration_delete(request, pk: int):
    integration = _integration(request, pk)
    counts = {
        "resources": Resource.objects.filter(integration=integration).count(),
        "roles": Role.objects.filter(integration=integration).count(),
        "accounts": Account.objects.filter(integration=integration).count(),
        "permissions": Permission.objects.filter(integration=integration).count(),
    }
    form = style_form(DeleteForm(request.POST or None, expected=integration.name))
    if request.method == "POST" and form.is_valid():
        name = integration.name
        services.integration_delete(actor=request.user, integration=integration)
        toast(request, f"{name} and its inventory were deleted.")
        return redirect("integrations:list")
    return render(
        request,
        "integrations/delete.html",
        {"integration": integration, "counts": counts, "form": form, "nav": "integrations"},
        status=400 if request.method == "POST" else 200,
    )


# -- add ----------------------------------------------------------------------------------------
@login_required
def integration_add(request):
    require_admin(request)
    entries = sorted(catalogue.connectors().items(), key=lambda kv: kv[1].spec.label.lower())
    return render(
        request,
        "integrations/add_catalogue.html",
        {"entries": [(slug, c.spec, catalogue.icon_url(slug)) for slug, c in entries], "nav": "integrations"},
    )


def _docs(spec) -> tuple[str, str]:
    """The connector's documentation: (text, url) — text of a README next to the spec, or a link."""
    docs = spec.docs
    if docs is None:
        return "", ""
    if isinstance(docs, str):
        return "", docs
    try:
        return docs.read_text(encoding="utf-8")[:100_000], ""
    except OSError:
        return "", ""


@login_required
def integration_add_form(request, slug: str):
    import json

    require_admin(request)
    try:
        connector = catalogue.get_connector(slug)
    except ValidationError:
        raise Http404("Unknown application.") from None
    spec = connector.spec
    example = dict(spec.example_config or {})
    options = spec.connection_options or []
    initial = {"config": json.dumps({k: v for k, v in example.items() if k != "connectionOption"}, indent=2)}
    if len(options) > 1:
        initial["connection_option"] = example.get("connectionOption") or options[0].key
    form = style_form(AddIntegrationForm(request.POST or None, connector=connector, initial=initial))
    test_error = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        config = dict(data["config"])
        if data.get("connection_option"):
            config["connectionOption"] = data["connection_option"]
        fields = {k: data[k] for k in FLAG_FIELDS}
        try:
            connector.validate_config(config)
        except Exception as exc:  # ConfigError: names the item
            form.add_error("config", str(exc))
        else:
            ok, message = (True, "") if data["agent"] else catalogue.test_connection(slug, config)
            if not ok:
                test_error = message
                form.add_error("config", f"The connection test failed: {message}")
            else:
                try:
                    integration = services.integration_create(
                        actor=request.user,
                        application=slug,
                        name=data["name"],
                        connection_config=config,
                        owner=data["owner"],
                        default_workflow=data["default_workflow"],
                        agent=data["agent"],
                        **fields,
                    )
                except ValidationError as exc:
                    add_errors(form, exc, rename={"connection_config": "config"})
                else:
                    start_sync(actor=request.user, integration=integration)
                    toast(request, f"{integration.name} is connected. Its first sync has started.")
                    return redirect(reverse("integrations:detail", args=[integration.pk]) + "#sync")
    docs_text, docs_url = _docs(spec)
    return render(
        request,
        "integrations/add_form.html",
        {
            "slug": slug,
            "spec": spec,
            "icon_url": catalogue.icon_url(slug),
            "form": form,
            "flag_names": FLAG_FIELDS,
            "options": options,
            "example": json.dumps(example, indent=2),
            "docs_text": docs_text,
            "docs_url": docs_url,
            "test_error": test_error,
            "nav": "integrations",
        },
        status=400 if request.method == "POST" else 200,
    )
