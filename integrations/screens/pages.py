"""The one way the list screens and the object pages work.

Lists: a FilterSet (the API's) filters a plain queryset; the table sorts, counts and pages it; only then
are the rows of the page shown loaded by id, with what they display (related objects, tags, counts).
Sorting and counting thus never drag joins and per-row subqueries through the whole inventory, deep pages
skip plain ids, and the query count is the same at every page size.

Pages: an object's page has sections (settings, workflow, maintainers...), each with a form that posts to
its own view: valid, the service runs and the admin lands back on the section with a toast; invalid (or
refused by the service), the page is shown again with the form's errors, the section open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import EmptyPage, PageNotAnInteger
from django.db.models import Count, IntegerField, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_tables2.data import TableQuerysetData

from governance.inputs import page_size

from .. import services
from ..filters import AccountFilter, IntegrationFilter, ResourceFilter, RoleFilter
from ..models import ApprovalStep, Permission, PrerequisitePermission, Resource, Role
from ..rights import (
    can_change_policy,
    manageable_accounts,
    manageable_integrations,
    manageable_resources,
    manageable_roles,
)
from ..selectors import uncorrelated_counts
from . import tables
from .common import add_errors, style_filter, style_form, toast
from .forms import MaintainerForm, PrerequisiteForm, WorkflowForm

PER_PAGE = 25
MAX_PER_PAGE = 500


def paginate(request, table, default: int = PER_PAGE):
    """Sort and page a table from the query string (``sort``, ``page``, ``per_page``): the one rule of every
    table of the screens. ``per_page`` is a whole number up to :data:`MAX_PER_PAGE`, anything else is the
    table's default (:func:`governance.inputs.page_size`; django-tables2's ``RequestConfig`` would take any
    number); a page past the end shows the last one, a page that is not a number the first."""
    table.request = request
    order_by = request.GET.getlist(table.prefixed_order_by_field)
    if order_by:
        table.order_by = order_by
    size = page_size(request.GET.get(table.prefixed_per_page_field), default=default, maximum=MAX_PER_PAGE)
    try:
        table.paginate(per_page=size, page=request.GET.get(table.prefixed_page_field) or 1)
    except PageNotAnInteger:
        table.page = table.paginator.page(1)
    except EmptyPage:
        table.page = table.paginator.page(table.paginator.num_pages)
    return table


def _count(model, fk: str, **active):
    """A per-row count of ``model`` rows pointing at the row through ``fk``, as an annotation."""
    rows = model.objects.filter(**{fk: OuterRef("pk")}, **active).order_by().values(fk)
    return Coalesce(Subquery(rows.annotate(n=Count("pk")).values("n"), output_field=IntegerField()), 0)


# What a row of each list displays, loaded for the rows of one page (or the few rows of a small list).
def integration_rows(qs: QuerySet) -> QuerySet:
    return qs.select_related("owner", "default_workflow").annotate(
        resources_count=_count(Resource, "integration", removed_at=None)
    )


def resource_rows(qs: QuerySet) -> QuerySet:
    return (
        qs.select_related("integration", "owner")
        .prefetch_related("tags")
        .annotate(roles_count=_count(Role, "resource", removed_at=None))
    )


def role_rows(qs: QuerySet) -> QuerySet:
    return (
        qs.select_related("resource", "integration", "workflow")
        .prefetch_related("tags")
        .annotate(holders=_count(Permission, "role", ended_at=None))
    )


def account_rows(qs: QuerySet) -> QuerySet:
    return qs.select_related("integration", "user", "owner").annotate(
        permissions_count=_count(Permission, "account", ended_at=None)
    )


class PageRows(TableQuerysetData):
    """Table data sorted, counted and sliced on a plain queryset; a page's rows are then loaded by id."""

    def __init__(self, queryset: QuerySet, rows: Callable[[QuerySet], QuerySet]):
        super().__init__(queryset)
        self.rows = rows

    def _ordered(self) -> QuerySet:
        # The id breaks ties, in the direction of the first key: pages never repeat or skip a row.
        qs = self.data
        order = [o for o in (qs.query.order_by or qs.model._meta.ordering) if isinstance(o, str)]
        if any(o.lstrip("-") in ("pk", "id") for o in order):
            return qs
        return qs.order_by(*order, "-pk" if order and order[0].startswith("-") else "pk")

    def __getitem__(self, key):
        if not isinstance(key, slice):
            return self[key : key + 1][0]
        ids = list(self._ordered().values_list("pk", flat=True)[key])
        loaded = {r.pk: r for r in self.rows(self.data.model._base_manager.filter(pk__in=ids))}
        return [loaded[pk] for pk in ids if pk in loaded]


class IntegrationPageRows(PageRows):
    """The integrations of a page, each with its uncorrelated accounts counted for the whole page in one
    grouped query (from the partial index: fast however many accounts there are)."""

    def __getitem__(self, key):
        rows = super().__getitem__(key)
        if isinstance(key, slice):
            counts = uncorrelated_counts([r.pk for r in rows])
            for r in rows:
                r.uncorrelated_count = counts.get(r.pk, 0)
        return rows

    def __iter__(self):
        return iter(self[:])


@dataclass(frozen=True)
class ListSpec:
    """One list: its FilterSet, the plain queryset a user may see, what a row shows, its tables (the
    apps above the inventory build theirs and pass it to :func:`list_table`; those in :data:`LISTS` are
    also the targets of Bulk Actions)."""

    filter_class: type
    base: Callable[[Any], QuerySet]
    rows: Callable[[QuerySet], QuerySet]
    table: type
    bulk_table: type | None = None  # None: not a target of Bulk Actions
    data: type[PageRows] = PageRows


LISTS: dict[str, ListSpec] = {
    "integrations": ListSpec(
        IntegrationFilter,
        # The count is sortable: the few integrations keep it on the plain queryset too.
        lambda user: manageable_integrations(user).annotate(
            resources_count=_count(Resource, "integration", removed_at=None)
        ),
        integration_rows,
        tables.IntegrationTable,
        tables.BulkIntegrationTable,
        IntegrationPageRows,
    ),
    "resources": ListSpec(
        ResourceFilter,
        # By id columns, not through the related models' default orderings: the (integration, name) index.
        lambda user: manageable_resources(user).filter(removed_at=None).order_by("integration_id", "name"),
        resource_rows,
        tables.ResourceTable,
        tables.BulkResourceTable,
    ),
    "roles": ListSpec(
        RoleFilter,
        lambda user: manageable_roles(user).filter(removed_at=None).order_by("resource_id", "name"),
        role_rows,
        tables.RoleTable,
        tables.BulkRoleTable,
    ),
    "accounts": ListSpec(
        AccountFilter,
        # All of them, removed ones too (the filters narrow): by the (integration, identity) index.
        lambda user: manageable_accounts(user).order_by("integration_id", "identity"),
        account_rows,
        tables.AccountTable,
    ),
}


def filtered(filterset) -> QuerySet:
    """The filtered rows; none while a filter's value is invalid (the filter bar names the error)."""
    if not filterset.is_bound:
        return filterset.queryset
    return filterset.qs if filterset.is_valid() else filterset.queryset.none()


def list_table(
    request,
    target: str | ListSpec,
    *,
    empty_text: str,
    queryset: QuerySet | None = None,
    params=None,
    bulk: bool = False,
    default_per_page: int = PER_PAGE,
    **table_kwargs,
):
    """The FilterSet (styled, for the filter bar) and the paginated table of the list ``target`` (a name
    in :data:`LISTS`, or a list's own :class:`ListSpec`).

    ``queryset`` narrows the user's objects (e.g. one integration's resources); ``params`` replace the
    request's query string as the filters' input.
    """
    spec = target if isinstance(target, ListSpec) else LISTS[target]
    qs = spec.base(request.user) if queryset is None else queryset
    params = request.GET if params is None else params
    filterset = style_filter(spec.filter_class(params or None, queryset=qs, request=request))
    table_class = spec.bulk_table if bulk else spec.table
    table = table_class(spec.data(filtered(filterset), spec.rows), empty_text=empty_text, **table_kwargs)
    paginate(request, table, default_per_page)
    return filterset, table


# -- object pages ---------------------------------------------------------------------------------
def workflow_steps(workflow) -> list[ApprovalStep]:
    if workflow is None:
        return []
    return list(
        ApprovalStep.objects.filter(workflow=workflow).prefetch_related("approvers__user", "approvers__group")
    )


def prerequisites(**scope) -> QuerySet:
    return PrerequisitePermission.objects.filter(**scope).prefetch_related(
        Prefetch("alternatives", queryset=Role.objects.select_related("resource", "integration"))
    )


# Settings fields that decide an object's owner (``rights.POLICY_FIELDS``), as the settings forms name them.
POLICY_FORM_FIELDS = ("owner", "auto_assign_recommended_owners")


def lock_policy_fields(form, user, obj) -> bool:
    """Show the owner fields of ``obj``'s settings form read-only to who may not change them
    (``rights.can_change_policy``): disabled, so a posted value is ignored for the stored one.
    Returns whether ``user`` may change them."""
    if can_change_policy(user, obj):
        return True
    for name in POLICY_FORM_FIELDS:
        if name in form.fields:
            form.fields[name].disabled = True
            form.fields[name].initial = getattr(obj, "owner_id" if name == "owner" else name)
    return False


def policy_context(obj, *, user, workflow_id, effective_workflow, settings_form=None) -> dict:
    """The sections every object page has: its approval workflow (own and effective) and prerequisites.
    Who may not change the object's owner and workflow sees them without the means to change them."""
    kind = obj._meta.model_name
    if settings_form is not None:
        editable = lock_policy_fields(settings_form, user, obj)
    else:
        editable = can_change_policy(user, obj)
    return {
        "policy_editable": editable,
        "workflow_form": style_form(WorkflowForm(initial={"workflow": workflow_id})),
        "workflow_steps": workflow_steps(effective_workflow),
        "prerequisites": prerequisites(**{kind: obj}),
        "prerequisite_form": PrerequisiteForm(),
        "section": None,
    }


@dataclass(frozen=True)
class ObjectPage:
    """An object's page: how to fetch the object for the asking user, its template, its context."""

    template: str
    url_name: str
    get: Callable[[Any, int], Any]
    context: Callable[..., dict]

    def render(self, request, obj, *, status: int = 200, **extra):
        return render(request, self.template, self.context(request, obj, **extra), status=status)

    def detail(self):
        """The page's view."""

        @login_required
        def view(request, pk: int):
            return self.render(request, self.get(request, pk))

        view.__name__ = f"{self.url_name.rsplit(':', 1)[-1]}_detail"
        return view

    def back(self, obj, section: str = ""):
        return redirect(reverse(self.url_name, args=[obj.pk]) + (f"#{section}" if section else ""))

    def section(
        self,
        form_class,
        section: str,
        *,
        save: Callable[[Any, Any, dict], Any],
        message: str | Callable[[Any, dict], str],
        form_name: str | None = None,
        form_kwargs: Callable[[Any], dict] | None = None,
        rename: dict[str, str] | None = None,
        prepare: Callable[[Any, Any, Any], Any] | None = None,
        refusals_on_form: bool = False,
    ):
        """The view of a section's form (POST only). Valid: ``save(actor, obj, cleaned_data)`` (a service),
        a toast (``message``, formatted with ``obj``), back to the section. Invalid or refused by the
        service: the page again with the form's errors and the section open (status 400).
        ``refusals_on_form``: the service's PermissionDenied too, for refusals that depend on what was
        chosen (e.g. oneself), shown on the form with status 403 instead of the 403 page."""

        @login_required
        @require_POST
        def view(request, pk: int):
            obj = self.get(request, pk)
            form = style_form(form_class(request.POST, **(form_kwargs(obj) if form_kwargs else {})))
            if prepare is not None:  # ``prepare(form, user, obj)``, before validation
                prepare(form, request.user, obj)
            status = 400
            if form.is_valid():
                try:
                    save(request.user, obj, form.cleaned_data)
                except ValidationError as exc:
                    add_errors(form, exc, rename)
                except PermissionDenied as exc:
                    if not refusals_on_form:
                        raise
                    form.add_error(None, str(exc))
                    status = 403
                else:
                    text = (
                        message.format(obj=obj)
                        if isinstance(message, str)
                        else message(obj, form.cleaned_data)
                    )
                    toast(request, text)
                    return self.back(obj, section)
            fresh = self.get(request, pk)  # the object as stored, not as the refused change left it
            return self.render(
                request, fresh, status=status, section=section, **{form_name or f"{section}_form": form}
            )

        view.__name__ = f"{self.url_name.rsplit(':', 1)[-1]}_{section}"
        return view

    def settings_and_workflow(self, settings_form, update: Callable[..., Any], *, workflow_field="workflow"):
        """The two sections every object page has, both saved by ``update(actor, obj, **changes)``: its
        settings, and its approval workflow (``workflow_field``)."""
        settings = self.section(
            settings_form,
            "settings",
            save=lambda actor, obj, data: update(actor, obj, **data),
            message="Settings of {obj.name} saved.",
            prepare=lock_policy_fields,
        )
        workflow = self.section(
            WorkflowForm,
            "workflow",
            save=lambda actor, obj, data: update(actor, obj, **{workflow_field: data["workflow"]}),
            message="Approval workflow saved.",
        )
        return settings, workflow

    def maintainers(self, scope: str):
        """The "add a maintainer" section of an integration's or resource's page (``scope``)."""
        return self.section(
            MaintainerForm,
            "maintainers",
            form_name="maintainer_form",
            save=lambda actor, obj, data: services.maintainer_add(actor=actor, **{scope: obj}, **data),
            message=lambda obj, data: f"{data['user'] or data['group']} now maintains {obj}.",
        )
