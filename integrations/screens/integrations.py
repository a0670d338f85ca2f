"""Integrations: the list (home of admins), the integration page and its sections, add, sync, delete."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_POST
from django_htmx.http import trigger_client_event

from governance.models import AuditEvent, Job

from .. import catalogue, hooks, services
from ..models import Account, Integration, Maintainer, Permission, PrerequisitePermission, Resource, Role
from ..rights import (
    can_delete_integration,
    is_admin,
    manageable_resources,
    prerequisite_roles,
)
from ..selectors import uncorrelated_accounts
from ..services.prerequisites import prerequisite_add, prerequisite_remove
from .common import add_errors, get_managed, manages_integrations, require_admin, style_form, toast
from .forms import (
    FLAG_FIELDS,
    FLAG_LABELS,
    AddIntegrationForm,
    ConnectionForm,
    DeleteForm,
    IntegrationSettingsForm,
    MaintainerForm,
    PrerequisiteForm,
)
from .jobs import latest_sync, start_sync
from .pages import ObjectPage, list_table, policy_context
from .tables import uncorrelated_url


@login_required
def home(request):
    if manages_integrations(request.user):
        return integration_list(request)
    if manageable_resources(request.user).exists():
        return redirect("integrations:resources")
    return redirect(settings.LANDING_URL_NAME)  # everyone else: the request catalogue (settings)


@login_required
def integration_list(request):
    if not manages_integrations(request.user):
        raise PermissionDenied("You do not own or maintain any integration.")
    filterset, table = list_table(
        request,
        "integrations",
        empty_text="No integration matches. Add one to start governing an application.",
    )
    return render(
        request,
        "integrations/list.html",
        {"table": table, "filter": filterset, "nav": "integrations", "is_admin": is_admin(request.user)},
    )


def _integration(request, pk: int) -> Integration:
    return get_managed(
        request, Integration.objects.select_related("owner", "default_workflow", "agent"), pk=pk
    )


def _secrets(integration: Integration) -> tuple[object, list[tuple[str, bool]]]:
    """The connector's spec and, for each secret item, whether it is set (never its value)."""
    try:
        spec = integration.connector.spec
    except ValidationError:
        return None, []
    stored = integration.connection_secrets or {}
    return spec, [(k, k in stored) for k in spec.secret_keys]


def _secret_keys(integration: Integration) -> list[str]:
    return [k for k, _ in _secrets(integration)[1]]


def _connection_form(integration: Integration, secret_keys: list[str]) -> ConnectionForm:
    attributes = integration.connector_attributes
    initial = {
        "config": json.dumps(integration.connection_config, indent=2),
        "connector_attributes": json.dumps(attributes, indent=2) if attributes else "",
    }
    return ConnectionForm(initial=initial, secret_keys=secret_keys)


def integration_context(request, integration: Integration, **extra) -> dict:
    resource_filter, resource_table = list_table(
        request,
        "resources",
        queryset=Resource.objects.filter(integration=integration, removed_at=None).order_by("name"),
        empty_text="No resources yet. Sync the integration to discover them.",
        default_per_page=10,
        exclude=("integration",),
    )
    counts = {
        "resources": Resource.objects.filter(integration=integration, removed_at=None).count(),
        "roles": Role.objects.filter(integration=integration, removed_at=None).count(),
        "accounts": Account.objects.filter(integration=integration, removed_at=None).count(),
        "permissions": Permission.objects.filter(integration=integration, ended_at=None).count(),
    }
    uncorrelated = uncorrelated_accounts(integration).count()
    spec, secrets = _secrets(integration)
    deletion_job = None
    if integration.deletion_started_at:
        deletion_job = (
            Job.objects.filter(kind="delete", integration_id=integration.pk).order_by("-created_at").first()
        )
    settings_form = style_form(
        IntegrationSettingsForm(initial=IntegrationSettingsForm.initial_for(integration))
    )
    return {
        "integration": integration,
        "deletion_job": deletion_job,
        "nav": "integrations",
        "counts": counts,
        "uncorrelated": uncorrelated,
        "uncorrelated_url": uncorrelated_url(integration.pk),
        "flags": [(FLAG_LABELS[f], getattr(integration, f)) for f in FLAG_FIELDS],
        "settings_form": settings_form,
        "can_delete": can_delete_integration(request.user, integration),
        "app_links": [
            link for links in hooks.integration_links(integration, viewer=request.user) for link in links
        ],
        "connection_form": style_form(_connection_form(integration, [k for k, _ in secrets])),
        "spec": spec,
        "secrets": secrets,
        "maintainers": Maintainer.objects.filter(integration=integration).select_related("user", "group"),
        "maintainer_form": style_form(MaintainerForm()),
        "job": latest_sync(integration),
        "syncs": Job.objects.filter(kind="sync", integration_id=integration.pk).order_by("-created_at")[:5],
        "events": AuditEvent.objects.filter(integration_id=integration.pk)[:15],
        "resource_table": resource_table,
        "resource_filter": resource_filter,
        **policy_context(
            integration,
            user=request.user,
            settings_form=settings_form,
            workflow_id=integration.default_workflow_id,
            effective_workflow=integration.default_workflow,
        ),
        **extra,
    }


PAGE = ObjectPage("integrations/detail.html", "integrations:detail", _integration, integration_context)


integration_detail = PAGE.detail()

integration_settings, integration_workflow = PAGE.settings_and_workflow(
    IntegrationSettingsForm,
    lambda actor, obj, **changes: services.integration_update(actor=actor, integration=obj, **changes),
    workflow_field="default_workflow",
)
integration_connection = PAGE.section(
    ConnectionForm,
    "connection",
    form_kwargs=lambda obj: {"secret_keys": _secret_keys(obj)},
    save=lambda actor, obj, data: services.integration_update(
        actor=actor,
        integration=obj,
        connection_config=data["connection_config"],
        connector_attributes=data["connector_attributes"],
    ),
    message="Connection saved. Test it to check it works.",
    rename={"connection_config": "config"},
)
maintainer_add = PAGE.maintainers("integration")


@login_required
@require_POST
def integration_test(request, pk: int):
    integration = _integration(request, pk)
    ok, message = services.integration_test_connection(actor=request.user, integration=integration)
    if request.htmx:
        return render(request, "integrations/_test_result.html", {"ok": ok, "message": message})
    toast(request, message if ok else f"Connection failed: {message}", "success" if ok else "error")
    return PAGE.back(integration, "connection")


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
    form = PrerequisiteForm(request.POST, roles=prerequisite_roles(request.user, obj))
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
        message, level = "A sync of this integration is already running.", "warning"
    elif job.status == Job.Status.FAILED:
        message, level = f"The sync could not start: {job.error}", "error"
    else:
        message, level = "Sync started.", "success"
    if request.htmx:  # the toast goes with this answer, not with whatever page opens next
        response = render(
            request, "integrations/_sync.html", {"integration": integration, "job": latest_sync(integration)}
        )
        return trigger_client_event(response, "toast", {"level": level, "message": message})
    toast(request, message, level)
    return PAGE.back(integration, "sync")


@login_required
def integration_sync_status(request, pk: int):
    integration = _integration(request, pk)
    return render(
        request, "integrations/_sync.html", {"integration": integration, "job": latest_sync(integration)}
    )


@login_required
@require_POST
def integration_sync_cancel(request, pk: int):
    integration = _integration(request, pk)
    job = latest_sync(integration)
    if job and not job.is_finished:
        services.job_stop(actor=request.user, job=job)
        toast(request, "Cancelling the sync.", "warning")
    return PAGE.back(integration, "sync")


@login_required
def integration_delete(request, pk: int):
    integration = _integration(request, pk)
    if not can_delete_integration(request.user, integration):
        raise PermissionDenied("Only admins may delete an integration.")
    counts = {
        "resources": Resource.objects.filter(integration=integration).count(),
        "roles": Role.objects.filter(integration=integration).count(),
        "accounts": Account.objects.filter(integration=integration).count(),
        "permissions": Permission.objects.filter(integration=integration).count(),
    }
    form = style_form(DeleteForm(request.POST or None, expected=integration.name))
    if request.method == "POST" and form.is_valid():
        job = services.integration_delete_start(actor=request.user, integration=integration)
        if job.status == Job.Status.SKIPPED:
            toast(request, f"{integration.name} is already being deleted.", "warning")
        elif job.status == Job.Status.FAILED:
            toast(request, f"The deletion could not start: {job.error}", "error")
        else:
            toast(request, f"Deleting {integration.name} and its inventory.")
        return redirect("integrations:job", pk=job.pk)
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


@login_required
@cache_control(max_age=3600, private=True)
def application_icon(request, slug: str):
    """The icon a connector ships in its folder."""
    try:
        icon = catalogue.get_connector(slug).spec.icon
    except ValidationError:
        raise Http404("unknown application") from None
    if icon is None or not icon.is_file():
        raise Http404("this connector has no icon")
    return FileResponse(icon.open("rb"), content_type="image/svg+xml" if icon.suffix == ".svg" else None)
