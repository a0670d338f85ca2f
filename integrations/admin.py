"""The Django admin for power edits. Secrets are never displayed; writes are audited by the signals."""

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.utils.html import format_html

from governance.admin import PortalAdmin, PortalTabularInline
from governance.inputs import BoundedJSONDecoder

from . import services
from .catalogue import application_choices, get_connector
from .durations import Duration
from .models import (
    Account,
    Agent,
    ApprovalRule,
    ApprovalStep,
    ApprovalWorkflow,
    Approver,
    Integration,
    Maintainer,
    Permission,
    PrerequisitePermission,
    Resource,
    Role,
    RoleImplication,
    Tag,
)


class DurationsField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs):
        super().__init__(choices=Duration.choices, required=False, **kwargs)


class IntegrationForm(forms.ModelForm):
    actor = None  # the signed-in user, set by IntegrationAdmin.get_form
    application = forms.ChoiceField(choices=())
    allowed_durations = DurationsField()
    new_secrets = forms.CharField(
        required=False,
        label="Set secrets",
        help_text='A JSON object of secret items to set or replace, e.g. {"password": "…"}. '
        "Leave empty to keep the stored secrets. Secret values are never shown.",
        widget=forms.Textarea(attrs={"rows": 2, "autocomplete": "off"}),
    )

    class Meta:
        model = Integration
        exclude = ("connection_secrets", "sync_state")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["application"].choices = application_choices()
        for name in ("connection_config", "connector_attributes"):  # bounded: depth, no NUL
            self.fields[name].decoder = BoundedJSONDecoder
        if self.instance.pk:
            self.fields["application"].disabled = True

    def clean(self):
        data = super().clean()
        application = data.get("application") or self.instance.application
        config = data.get("connection_config")
        if not application or config is None:
            return data
        if not isinstance(config, dict):
            self.add_error("connection_config", "The connection config must be a JSON object.")
            return data
        try:
            new_secrets = json.loads(data.get("new_secrets") or "{}", cls=BoundedJSONDecoder)
        except json.JSONDecodeError as exc:
            self.add_error(
                "new_secrets", f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            )
            return data
        if not isinstance(new_secrets, dict):
            self.add_error("new_secrets", "Secrets must be a JSON object.")
            return data
        try:
            connector = get_connector(application)
        except ValidationError as exc:
            self.add_error("application", exc.message_dict["application"])
            return data
        unknown = sorted(set(new_secrets) - set(connector.spec.secret_keys))
        if unknown:
            self.add_error("new_secrets", f"Not secret items of this connector: {', '.join(unknown)}.")
            return data
        # The services' rule: secrets follow their address (a new URL, host or agent needs them again).
        self.instance.application = application
        agent = data.get("agent")
        try:
            services.connection_merge(
                actor=self.actor,
                integration=self.instance,
                config={**config, **new_secrets},
                agent_changed=self.instance.pk is not None
                and getattr(agent, "pk", None) != self.instance.agent_id,
            )
        except ValidationError as exc:
            self.add_error("connection_config", exc.messages)
            return data
        data["connection_config"] = self.instance.connection_config
        return data


class MaintainerInline(PortalTabularInline):
    model = Maintainer
    extra = 0
    autocomplete_fields = ("user", "group")


class IntegrationMaintainerInline(MaintainerInline):
    fk_name = "integration"
    exclude = ("resource",)


class ResourceMaintainerInline(MaintainerInline):
    fk_name = "resource"
    exclude = ("integration",)


class PrerequisiteInline(PortalTabularInline):
    model = PrerequisitePermission
    extra = 0
    autocomplete_fields = ("alternatives",)


class IntegrationPrerequisiteInline(PrerequisiteInline):
    fk_name = "integration"
    exclude = ("resource", "role")


class ResourcePrerequisiteInline(PrerequisiteInline):
    fk_name = "resource"
    exclude = ("integration", "role")


class RolePrerequisiteInline(PrerequisiteInline):
    fk_name = "role"
    exclude = ("integration", "resource")


@admin.register(Integration)
class IntegrationAdmin(PortalAdmin):
    form = IntegrationForm

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    list_display = (
        "icon",
        "name",
        "application",
        "owner",
        "default_workflow",
        "n_resources",
        "last_synced_at",
        "last_sync_status",
    )
    list_display_links = ("icon", "name")
    list_filter = ("application", "last_sync_status", "read_only", "requestable", "agent")
    search_fields = ("name", "application")
    autocomplete_fields = ("owner", "default_workflow", "agent")
    readonly_fields = (
        "secrets",
        "last_synced_at",
        "resources_last_synced_at",
        "permissions_last_synced_at",
        "last_sync_status",
        "last_sync_error",
        "created_at",
        "updated_at",
    )
    inlines = (IntegrationMaintainerInline, IntegrationPrerequisiteInline)
    fieldsets = (
        (None, {"fields": ("application", "name", "owner", "default_workflow", "agent")}),
        ("Connection", {"fields": ("connection_config", "secrets", "new_secrets", "connector_attributes")}),
        (
            "Settings",
            {
                "fields": (
                    "read_only",
                    "allow_changing_account_permissions",
                    "allow_creating_accounts",
                    "requestable",
                    "requestable_by_default",
                    "auto_assign_recommended_owners",
                    "auto_assign_recommended_maintainers",
                    "notify_external_permission_changes",
                    "override_allowed_durations",
                    "allowed_durations",
                )
            },
        ),
        (
            "Sync",
            {
                "fields": (
                    "resources_sync_interval",
                    "permissions_sync_interval",
                    "last_synced_at",
                    "resources_last_synced_at",
                    "permissions_last_synced_at",
                    "last_sync_status",
                    "last_sync_error",
                )
            },
        ),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("owner", "default_workflow")
            .annotate(_n_resources=Count("resources", filter=Q(resources__removed_at__isnull=True)))
        )

    # Deleting runs as a job (integrations.services.deletion): the confirmation counts the inventory
    # instead of listing it, and confirming starts the job.
    def get_deleted_objects(self, objs, request):
        from .cascade import integration_inventory_size

        objs = list(objs)
        rows = sum(integration_inventory_size(o.pk) for o in objs)
        summary = {"integrations": len(objs), "rows of their inventory (deleted by a background job)": rows}
        return [str(o) for o in objs], summary, set(), []

    def delete_model(self, request, obj):
        from .services.deletion import integration_delete_start

        integration_delete_start(actor=request.user, integration=obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    @admin.display(description="")
    def icon(self, obj):
        return format_html('<img src="{}" alt="" width="20" height="20">', obj.icon_url)

    @admin.display(description="Resources", ordering="_n_resources")
    def n_resources(self, obj):
        return obj._n_resources

    @admin.display(description="Secrets")
    def secrets(self, obj):
        try:
            keys = sorted(get_connector(obj.application).spec.secret_keys) if obj.application else []
        except ValidationError:
            keys = []
        if not keys:
            return "This connector has no secret items."
        stored = obj.connection_secrets or {}
        return ", ".join(f"{k}: {'set' if k in stored else 'not set'}" for k in keys)


class RoleInline(PortalTabularInline):
    model = Role
    extra = 0
    fields = ("name", "external_id", "requestable", "workflow", "removed_at")
    readonly_fields = ("removed_at",)
    show_change_link = True
    autocomplete_fields = ("workflow",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("workflow")


class DurationsAdminForm(forms.ModelForm):
    allowed_durations = DurationsField()


@admin.register(Resource)
class ResourceAdmin(PortalAdmin):
    form = DurationsAdminForm
    list_display = ("name", "integration", "kind", "owner", "requestable", "workflow", "removed_at")
    list_filter = ("integration", "kind", "requestable", "tags", ("removed_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "external_id", "description")
    autocomplete_fields = ("integration", "owner", "workflow", "tags")
    readonly_fields = ("first_seen_at", "last_seen_at", "removed_at", "attributes_json")
    exclude = ("attributes",)
    list_select_related = ("integration", "owner", "workflow")
    inlines = (RoleInline, ResourceMaintainerInline, ResourcePrerequisiteInline)

    @admin.display(description="Attributes")
    def attributes_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.attributes, indent=2, sort_keys=True))


class ImplicationInline(PortalTabularInline):
    model = RoleImplication
    fk_name = "role"
    extra = 0
    autocomplete_fields = ("implied_role",)
    verbose_name = "implied role"
    verbose_name_plural = "Implied roles (holding this role also gives these)"


@admin.register(Role)
class RoleAdmin(PortalAdmin):
    form = DurationsAdminForm
    list_display = ("name", "resource", "integration", "requestable", "workflow", "removed_at")
    list_filter = ("integration", "requestable", "tags", ("removed_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "external_id", "resource__name")
    autocomplete_fields = ("integration", "resource", "workflow", "tags")
    readonly_fields = ("first_seen_at", "last_seen_at", "removed_at", "attributes_json")
    exclude = ("attributes",)
    list_select_related = ("resource", "integration", "workflow")
    inlines = (ImplicationInline, RolePrerequisiteInline)
    attributes_json = ResourceAdmin.attributes_json


@admin.register(Account)
class AccountAdmin(PortalAdmin):
    """Who holds an account is read-only here: it changes on the account's page or the API, under the rule
    that nobody decides it about themselves (``rights.account_link_refusal``), with its named audit event."""

    list_display = (
        "identity",
        "integration",
        "email",
        "user",
        "link_source",
        "service_account",
        "enabled",
        "removed_at",
    )
    list_filter = (
        "integration",
        "link_source",
        "service_account",
        "enabled",
        ("user", admin.EmptyFieldListFilter),
        ("removed_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("identity", "external_id", "email")
    autocomplete_fields = ("integration",)
    readonly_fields = (
        "user",
        "link_source",
        "service_account",
        "owner",
        "first_seen_at",
        "last_seen_at",
        "removed_at",
        "attributes_json",
    )
    exclude = ("attributes",)
    list_select_related = ("integration", "user")
    attributes_json = ResourceAdmin.attributes_json


@admin.register(Permission)
class PermissionAdmin(PortalAdmin):
    list_display = ("account", "role", "integration", "source", "granted_at", "expires_at", "ended_at")
    list_filter = ("source", "integration", ("ended_at", admin.EmptyFieldListFilter))
    search_fields = ("account__identity", "role__name", "role__resource__name")
    autocomplete_fields = ("integration", "account", "role")
    list_select_related = ("account", "role__resource", "integration")
    show_full_result_count = False


class ApproverInline(PortalTabularInline):
    model = Approver
    extra = 0
    autocomplete_fields = ("user", "group")


@admin.register(ApprovalStep)
class ApprovalStepAdmin(PortalAdmin):
    list_display = ("workflow", "rule", "position", "mode")
    list_filter = ("workflow",)
    inlines = (ApproverInline,)
    autocomplete_fields = ("rule",)
    exclude = ("workflow",)


class StepInline(PortalTabularInline):
    model = ApprovalStep
    extra = 0
    show_change_link = True
    exclude = ("workflow",)


@admin.register(ApprovalRule)
class ApprovalRuleAdmin(PortalAdmin):
    list_display = ("workflow", "position", "max_duration")
    list_filter = ("workflow",)
    search_fields = ("workflow__name",)
    autocomplete_fields = ("workflow",)
    filter_horizontal = ("requester_groups",)
    inlines = (StepInline,)


class RuleInline(PortalTabularInline):
    model = ApprovalRule
    extra = 0
    show_change_link = True
    fields = ("position", "max_duration", "requester_groups")


@admin.register(ApprovalWorkflow)
class ApprovalWorkflowAdmin(PortalAdmin):
    list_display = ("name", "n_steps", "updated_at")
    search_fields = ("name", "description")
    inlines = (RuleInline,)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_n_steps=Count("steps"))

    @admin.display(description="Steps", ordering="_n_steps")
    def n_steps(self, obj):
        return obj._n_steps


@admin.register(Agent)
class AgentAdmin(PortalAdmin):
    list_display = ("name", "queue", "description", "last_seen_at")
    search_fields = ("name",)


@admin.register(Tag)
class TagAdmin(PortalAdmin):
    search_fields = ("name",)


@admin.register(Maintainer)
class MaintainerAdmin(PortalAdmin):
    list_display = ("__str__", "integration", "resource", "user", "group")
    autocomplete_fields = ("integration", "resource", "user", "group")
    list_select_related = ("integration", "resource", "user", "group")


@admin.register(PrerequisitePermission)
class PrerequisitePermissionAdmin(PortalAdmin):
    list_display = ("__str__", "integration", "resource", "role")
    autocomplete_fields = ("integration", "resource", "role", "alternatives")
    list_select_related = ("integration", "resource", "role__resource")
