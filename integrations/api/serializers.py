"""Serializers of the REST API: they validate input and shape output; the services write."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from governance.api import StrictModelSerializer, StrictSerializer
from governance.models import AuditEvent, Job

from ..catalogue import get_connector
from ..models import (
    Account,
    ApprovalRule,
    ApprovalStep,
    ApprovalWorkflow,
    Approver,
    Integration,
    Maintainer,
    Permission,
    Resource,
    Role,
    Rule,
)
from ..rights import manageable_roles
from ..selectors import effective_settings

User = get_user_model()


class TagsField(serializers.ListField):
    """Tags by name; written whole (the object ends up with exactly these tags)."""

    child = serializers.CharField(max_length=100)

    def to_representation(self, value):
        return sorted(t.name for t in value.all())


class MaintainerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Maintainer
        fields = ["id", "user", "group"]
        read_only_fields = fields


# -- integrations -----------------------------------------------------------------------------------------


class IntegrationSerializer(StrictModelSerializer):
    connection_config = serializers.JSONField(
        required=False,
        help_text="Connection settings. Secret items are accepted here but never returned: "
        "left out or empty, a secret keeps its stored value.",
    )
    connection_secrets = serializers.SerializerMethodField(
        help_text='Each secret item of the connector and whether it is stored: "set" or "unset".'
    )
    maintainers = MaintainerSerializer(many=True, read_only=True)

    class Meta:
        model = Integration
        fields = [
            "id",
            "name",
            "application",
            "owner",
            "default_workflow",
            "agent",
            "connection_config",
            "connection_secrets",
            "connector_attributes",
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
            "notification_webhook_url",
            "resources_sync_interval",
            "permissions_sync_interval",
            "maintainers",
            "last_synced_at",
            "resources_last_synced_at",
            "permissions_last_synced_at",
            "last_sync_status",
            "last_sync_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "last_synced_at",
            "resources_last_synced_at",
            "permissions_last_synced_at",
            "last_sync_status",
            "last_sync_error",
            "created_at",
            "updated_at",
        ]

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None and not isinstance(self.instance, (list, tuple)):
            fields["application"].read_only = True  # a saved integration keeps its connector
        return fields

    @extend_schema_field(
        {"type": "object", "additionalProperties": {"type": "string", "enum": ["set", "unset"]}}
    )
    def get_connection_secrets(self, obj) -> dict:
        try:
            keys = get_connector(obj.application).spec.secret_keys
        except Exception:  # an uninstalled connector: show what is stored
            keys = []
        stored = obj.connection_secrets or {}
        return {k: "set" if stored.get(k) not in (None, "") else "unset" for k in sorted({*keys, *stored})}

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if "connection_config" in data:
            data["connection_config"] = instance.connection_config  # plain items only: secrets live apart
        return data

    def validate_connection_config(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("The connection config must be a JSON object.")
        return value

    def validate_connector_attributes(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Connector attributes must be a JSON object.")
        return value

    def validate_allowed_durations(self, value):
        if not isinstance(value, list):
            raise serializers.ValidationError("A list of duration keys.")
        return value

    def get_validators(self):
        return []  # uniqueness is the service's (full_clean) to check, with the same message


class SyncRequestSerializer(StrictSerializer):
    full = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="true: a full sync; false: a delta sync; empty: as the integration is set up.",
    )


class ConnectionTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField()


# -- inventory --------------------------------------------------------------------------------------------


class _PolicyFieldsMixin(serializers.Serializer):
    def validate_allowed_durations(self, value):
        if not isinstance(value, list):
            raise serializers.ValidationError("A list of duration keys.")
        return value


class EffectiveSettingsSerializer(serializers.Serializer):
    workflow = serializers.IntegerField(allow_null=True, source="workflow.pk", default=None)
    workflow_from = serializers.CharField()
    allowed_durations = serializers.ListField(child=serializers.CharField())
    durations_from = serializers.CharField()
    requestable = serializers.BooleanField()
    requestable_reason = serializers.CharField()
    owner = serializers.IntegerField(allow_null=True, source="owner.pk", default=None)
    owner_from = serializers.CharField()


class ResourceSerializer(_PolicyFieldsMixin, StrictModelSerializer):
    tags = TagsField(required=False)
    maintainers = MaintainerSerializer(many=True, read_only=True)

    class Meta:
        model = Resource
        fields = [
            "id",
            "integration",
            "external_id",
            "name",
            "kind",
            "description",
            "tags",
            "owner",
            "maintainers",
            "requestable",
            "workflow",
            "override_allowed_durations",
            "allowed_durations",
            "attributes",
            "first_seen_at",
            "last_seen_at",
            "removed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "integration",
            "external_id",
            "name",
            "kind",
            "attributes",
            "first_seen_at",
            "last_seen_at",
            "removed_at",
            "created_at",
            "updated_at",
        ]


class ResourceDetailSerializer(ResourceSerializer):
    effective = serializers.SerializerMethodField(
        help_text="Settings after inheritance from the integration."
    )

    class Meta(ResourceSerializer.Meta):
        fields = [*ResourceSerializer.Meta.fields, "effective"]

    @extend_schema_field(EffectiveSettingsSerializer)
    def get_effective(self, obj):
        return EffectiveSettingsSerializer(effective_settings(obj)).data


class RoleSerializer(_PolicyFieldsMixin, StrictModelSerializer):
    tags = TagsField(required=False)
    implies = serializers.PrimaryKeyRelatedField(
        many=True,
        required=False,
        queryset=Role.objects.none(),
        help_text="Roles that holding this role also gives (written whole).",
    )

    class Meta:
        model = Role
        fields = [
            "id",
            "integration",
            "resource",
            "external_id",
            "name",
            "description",
            "tags",
            "requestable",
            "workflow",
            "override_allowed_durations",
            "allowed_durations",
            "implies",
            "attributes",
            "first_seen_at",
            "last_seen_at",
            "removed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "integration",
            "resource",
            "external_id",
            "name",
            "attributes",
            "first_seen_at",
            "last_seen_at",
            "removed_at",
            "created_at",
            "updated_at",
        ]

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None and request.user.is_authenticated:
            fields["implies"].child_relation.queryset = manageable_roles(request.user)
        return fields


class RoleDetailSerializer(RoleSerializer):
    effective = serializers.SerializerMethodField(
        help_text="Settings after inheritance from the resource and the integration."
    )

    class Meta(RoleSerializer.Meta):
        fields = [*RoleSerializer.Meta.fields, "effective"]

    @extend_schema_field(EffectiveSettingsSerializer)
    def get_effective(self, obj):
        return EffectiveSettingsSerializer(effective_settings(obj)).data


class AccountSerializer(serializers.ModelSerializer):
    class Meta:
        model = Account
        fields = [
            "id",
            "integration",
            "external_id",
            "identity",
            "email",
            "user",
            "link_source",
            "service_account",
            "owner",
            "enabled",
            "attributes",
            "first_seen_at",
            "last_seen_at",
            "removed_at",
        ]
        read_only_fields = fields


def _person(help_text: str) -> serializers.PrimaryKeyRelatedField:
    """A portal user by id, or null; whether they may be chosen is the service's to say (400 or 403)."""
    return serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(), allow_null=True, help_text=help_text
    )


class AccountLinkSerializer(StrictSerializer):
    user = _person(
        "The portal user who holds the account (an active one), or null: nobody. Recorded as set by hand: "
        "syncs keep it. Nobody links an account to themselves."
    )


class AccountServiceSerializer(StrictSerializer):
    owner = _person(
        "The person answerable for the service account (an active user, not the caller), or null: a personal "
        "account again, which the next sync may link by its email."
    )


class PermissionSerializer(serializers.ModelSerializer):
    resource = serializers.IntegerField(source="role.resource_id", read_only=True)

    class Meta:
        model = Permission
        fields = [
            "id",
            "integration",
            "account",
            "role",
            "resource",
            "source",
            "granted_at",
            "expires_at",
            "ended_at",
            "last_seen_at",
        ]
        read_only_fields = fields


# -- workflows --------------------------------------------------------------------------------------------


class ApproverSerializer(StrictModelSerializer):
    user = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), required=False, allow_null=True)
    group = serializers.PrimaryKeyRelatedField(queryset=Group.objects.all(), required=False, allow_null=True)

    class Meta:
        model = Approver
        fields = ["kind", "user", "group"]


class ApprovalStepSerializer(StrictModelSerializer):
    approvers = ApproverSerializer(many=True)

    class Meta:
        model = ApprovalStep
        fields = ["position", "mode", "approvers"]
        read_only_fields = ["position"]
        extra_kwargs = {"mode": {"required": False}}


class ApprovalRuleSerializer(StrictModelSerializer):
    requester_groups = serializers.PrimaryKeyRelatedField(
        queryset=Group.objects.all(), many=True, required=False
    )
    steps = ApprovalStepSerializer(many=True)

    class Meta:
        model = ApprovalRule
        fields = ["position", "max_duration", "requester_groups", "steps"]
        read_only_fields = ["position"]
        extra_kwargs = {"max_duration": {"required": False}}


class WorkflowSerializer(StrictModelSerializer):
    rules = ApprovalRuleSerializer(
        many=True,
        required=False,
        help_text="Ordered rules, first match wins; written whole; positions follow the order.",
    )
    steps = ApprovalStepSerializer(
        many=True,
        required=False,
        help_text="Writing: shorthand for one catch-all rule with these steps. Reading: every rule's steps.",
    )

    class Meta:
        model = ApprovalWorkflow
        fields = ["id", "name", "description", "rules", "steps", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def get_validators(self):
        return []  # the service's full_clean checks the unique name


# -- jobs and audit ---------------------------------------------------------------------------------------


class JobSerializer(serializers.ModelSerializer):
    integration = serializers.IntegerField(source="integration_id", read_only=True, allow_null=True)
    finished = serializers.BooleanField(source="is_finished", read_only=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "finished",
            "phase",
            "integration",
            "params",
            "done",
            "total",
            "counts",
            "log",
            "error",
            "cancel_requested",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class AuditEventSerializer(serializers.ModelSerializer):
    object_type = serializers.SerializerMethodField()
    integration = serializers.IntegerField(source="integration_id", read_only=True, allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "occurred_at",
            "actor",
            "actor_repr",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "integration",
            "status",
            "details",
            "correlation_id",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_object_type(self, obj) -> str:
        ct = obj.object_type
        return f"{ct.app_label}.{ct.model}" if ct is not None else ""


# -- rules ------------------------------------------------------------------------------------------------


class RuleSerializer(StrictModelSerializer):
    class Meta:
        model = Rule
        fields = [
            "id",
            "name",
            "description",
            "target",
            "match",
            "conditions",
            "actions",
            "scope",
            "enabled",
            "position",
            "last_applied_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "last_applied_at", "created_at", "updated_at"]

    def get_validators(self):
        return []  # the service's full_clean checks the unique name
