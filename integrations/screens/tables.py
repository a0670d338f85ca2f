"""django-tables2 tables of the screens. Every per-row value comes from the queryset (annotations,
select_related, prefetch_related), so the query count does not grow with the page size."""

from __future__ import annotations

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from governance.models import AuditEvent

from ..models import Account, Integration, Permission, Resource, Role

STATUS_BADGES = {
    "succeeded": "bg-green-lt",
    "running": "bg-blue-lt",
    "queued": "bg-azure-lt",
    "failed": "bg-red-lt",
    "never": "bg-secondary-lt",
    "cancelled": "bg-secondary-lt",
    "skipped": "bg-yellow-lt",
    "ok": "bg-green-lt",
    "error": "bg-red-lt",
}


def badge(text, status: str) -> str:
    return format_html('<span class="badge {}">{}</span>', STATUS_BADGES.get(status, "bg-secondary-lt"), text)


def yes_no(value: bool) -> str:
    return format_html(
        '<span class="badge {}">{}</span>',
        "bg-green-lt" if value else "bg-secondary-lt",
        "Yes" if value else "No",
    )


class Base(tables.Table):
    class Meta:
        template_name = "includes/table.html"
        attrs = {"class": "table table-vcenter card-table table-sticky"}


class IntegrationTable(Base):
    icon = tables.Column(
        empty_values=(), orderable=False, verbose_name="", attrs={"td": {"style": "width:44px"}}
    )
    name = tables.Column(linkify=("integrations:detail", {"pk": tables.A("pk")}))
    resources_count = tables.Column(verbose_name="Resources", attrs={"td": {"class": "text-end"}})
    uncorrelated_count = tables.Column(
        verbose_name="Uncorrelated accounts",
        empty_values=(),
        orderable=False,
        attrs={"td": {"class": "text-end"}},
    )
    owner = tables.Column(empty_values=(None,), default="—")
    default_workflow = tables.Column(verbose_name="Default workflow", default="—")
    last_synced_at = tables.DateTimeColumn(verbose_name="Last sync", format="Y-m-d H:i", default="never")
    last_sync_status = tables.Column(verbose_name="Status")

    class Meta(Base.Meta):
        model = Integration
        fields = (
            "icon",
            "name",
            "resources_count",
            "uncorrelated_count",
            "owner",
            "default_workflow",
            "last_synced_at",
            "last_sync_status",
        )
        order_by = ("name",)

    def render_icon(self, record):
        return format_html('<img class="app-icon" src="{}" alt="{}">', record.icon_url, record.application)

    def render_resources_count(self, value):
        return f"{value:,}"

    def render_uncorrelated_count(self, record):
        # Counted for the page's rows at once (pages.IntegrationPageRows).
        return uncorrelated_link(record.pk, getattr(record, "uncorrelated_count", 0))

    # For a choices field django-tables2 passes the label as ``value``: the badge reads the stored key.
    def render_last_sync_status(self, record):
        return badge(record.get_last_sync_status_display(), record.last_sync_status)


def uncorrelated_url(integration_id: int) -> str:
    """The Accounts list narrowed to an integration's uncorrelated accounts."""
    return f"{reverse('integrations:accounts')}?integration={integration_id}&correlated=false&removed=false"


def uncorrelated_link(integration_id: int, n: int) -> str:
    if not n:
        return mark_safe('<span class="text-secondary">0</span>')
    return format_html(
        '<a class="badge bg-orange-lt text-decoration-none" href="{}" data-testid="uncorrelated-{}">{}</a>',
        uncorrelated_url(integration_id),
        integration_id,
        f"{n:,}",
    )


def tags_html(record) -> str:
    tags = list(record.tags.all())
    if not tags:
        return mark_safe('<span class="text-secondary">—</span>')
    return format_html_join(" ", '<span class="badge bg-azure-lt">{}</span>', ((t.name,) for t in tags))


class ResourceTable(Base):
    name = tables.TemplateColumn(template_name="inventory/_resource_name.html", order_by=("name",))
    integration = tables.Column(linkify=("integrations:detail", {"pk": tables.A("integration_id")}))
    kind = tables.Column(default="—")
    owner = tables.Column(default="—")
    tags = tables.Column(empty_values=(), orderable=False)
    requestable = tables.Column()
    roles_count = tables.Column(verbose_name="Roles", orderable=False, attrs={"td": {"class": "text-end"}})

    class Meta(Base.Meta):
        model = Resource
        fields = ("name", "integration", "kind", "owner", "tags", "requestable", "roles_count")

    def render_tags(self, record):
        return tags_html(record)

    def render_requestable(self, value):
        return yes_no(value)


class RoleTable(Base):
    name = tables.Column(linkify=("integrations:role", {"pk": tables.A("pk")}))
    resource = tables.Column(
        linkify=("integrations:resource", {"pk": tables.A("resource_id")}), order_by=("resource__name",)
    )
    integration = tables.Column(order_by=("integration__name",))
    requestable = tables.Column()
    workflow = tables.Column(default="inherited")
    tags = tables.Column(empty_values=(), orderable=False)
    holders = tables.Column(verbose_name="Holders", orderable=False, attrs={"td": {"class": "text-end"}})

    class Meta(Base.Meta):
        model = Role
        fields = ("name", "resource", "integration", "requestable", "workflow", "tags", "holders")

    def render_requestable(self, value):
        return yes_no(value)

    def render_tags(self, record):
        return tags_html(record)


# How an account's link was made, in a word (next to its user).
LINK_LABELS = {
    Account.LinkSource.CORRELATION: "by a sync",
    Account.LinkSource.GRANT: "access grant",
    Account.LinkSource.HAND: "set by hand",
    Account.LinkSource.NONE: "",
}


def holder_html(account) -> str:
    """Who holds an account, and how that was decided: a person, a service account's owner, or nobody."""
    if account.service_account:
        return format_html(
            '<span class="badge bg-purple-lt">Service account</span> <span class="text-secondary">owner</span> {}',
            account.owner or "—",
        )
    if account.user_id is None:
        if account.link_source == Account.LinkSource.HAND:
            return mark_safe(
                '<span class="text-secondary">nobody</span> <span class="badge">set by hand</span>'
            )
        if account.removed_at is not None:
            return mark_safe('<span class="text-secondary">not linked</span>')
        return mark_safe('<span class="badge bg-orange-lt">Uncorrelated</span>')
    return format_html(
        '{} <span class="badge">{}</span>', account.user, LINK_LABELS.get(account.link_source, "")
    )


class AccountTable(Base):
    """Sorted by account within each integration only (the (integration, identity) indexes): a million
    accounts sort by nothing else in time."""

    identity = tables.Column(
        linkify=("integrations:account", {"pk": tables.A("pk")}),
        verbose_name="Account",
        order_by=("integration_id", "identity"),
        orderable=True,
    )
    integration = tables.Column(linkify=("integrations:detail", {"pk": tables.A("integration_id")}))
    email = tables.Column(default="—")
    holder = tables.Column(empty_values=(), verbose_name="Held by")
    enabled = tables.Column()
    permissions_count = tables.Column(verbose_name="Permissions", attrs={"td": {"class": "text-end"}})
    last_seen_at = tables.DateTimeColumn(verbose_name="Last seen", format="Y-m-d H:i")

    class Meta(Base.Meta):
        model = Account
        fields = (
            "identity",
            "integration",
            "email",
            "holder",
            "enabled",
            "permissions_count",
            "last_seen_at",
        )
        orderable = False

    def render_identity(self, record, value):
        if record.removed_at is None:
            return value
        return format_html('{} <span class="badge bg-red-lt">removed</span>', value)

    def render_holder(self, record):
        return holder_html(record)

    def render_enabled(self, value):
        return yes_no(value)

    def render_permissions_count(self, value):
        return f"{value:,}"


class SelectableMixin(tables.Table):
    ids = tables.CheckBoxColumn(
        accessor="pk", attrs={"th__input": {"data-select-all": "1", "aria-label": "Select page"}}
    )


class BulkIntegrationTable(SelectableMixin, IntegrationTable):
    class Meta(IntegrationTable.Meta):
        sequence = ("ids", "...")


class BulkResourceTable(SelectableMixin, ResourceTable):
    class Meta(ResourceTable.Meta):
        sequence = ("ids", "...")


class BulkRoleTable(SelectableMixin, RoleTable):
    class Meta(RoleTable.Meta):
        sequence = ("ids", "...")


class HolderTable(Base):
    """Holders of ``role``: its permissions, and those of the roles that give it automatically."""

    account = tables.Column(
        accessor="account__identity", verbose_name="Account", order_by=("account__identity",)
    )
    user = tables.Column(accessor="account__user", verbose_name="User", default="not linked")
    through = tables.Column(accessor="role", verbose_name="Holds it", orderable=False)
    source = tables.Column()
    granted_at = tables.DateTimeColumn(format="Y-m-d H:i")
    expires_at = tables.DateTimeColumn(format="Y-m-d H:i", default="never")

    class Meta(Base.Meta):
        model = Permission
        fields = ("account", "user", "through", "source", "granted_at", "expires_at")

    def __init__(self, *args, role: Role, **kwargs):
        self.role = role
        super().__init__(*args, **kwargs)

    def render_through(self, record):
        if record.role_id == self.role.pk:
            return "directly"
        return format_html(
            'through <a href="{}">{}</a>', reverse("integrations:role", args=[record.role_id]), record.role
        )

    def render_source(self, record):
        css = {"portal": "bg-blue-lt", "external": "bg-orange-lt", "birthright": "bg-purple-lt"}.get(
            record.source, "bg-secondary-lt"
        )
        return format_html('<span class="badge {}">{}</span>', css, record.get_source_display())


class AuditTable(Base):
    occurred_at = tables.DateTimeColumn(format="Y-m-d H:i:s", verbose_name="When")
    actor_repr = tables.Column(verbose_name="Actor", default="system")
    action = tables.Column()
    object_repr = tables.Column(verbose_name="Object", default="—")
    integration = tables.Column(accessor="integration_id", verbose_name="Integration", default="—")
    status = tables.Column()
    details = tables.TemplateColumn(template_name="audit/_details.html", orderable=False)

    class Meta(Base.Meta):
        model = AuditEvent
        fields = ("occurred_at", "actor_repr", "action", "object_repr", "integration", "status", "details")
        row_attrs = {"class": lambda record: "table-danger" if record.status == "error" else ""}

    def __init__(self, *args, integration_names=None, **kwargs):
        self.integration_names = integration_names or {}
        super().__init__(*args, **kwargs)

    def render_integration(self, value):
        return self.integration_names.get(value, f"#{value}")

    def render_status(self, record):
        return badge(record.get_status_display(), record.status)
