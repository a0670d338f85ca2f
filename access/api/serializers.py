"""Serializers of the access-request and ticket endpoints."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from governance.api import StrictSerializer
from integrations.api.serializers import AuditEventSerializer, PermissionSerializer
from integrations.durations import Duration
from integrations.models import Role

from ..models import AccessDecision, AccessRequest, AccessTicket
from ..selectors import access_request_events, roles_open_to

User = get_user_model()


class AccessRequestCreateSerializer(StrictSerializer):
    role = serializers.PrimaryKeyRelatedField(
        queryset=Role.objects.none(),
        help_text="The role to request: one of the catalogue's (requestable) roles, or one the caller manages.",
    )
    duration = serializers.ChoiceField(
        choices=Duration.choices, help_text="A duration key; it must be one of the role's allowed durations."
    )
    justification = serializers.CharField(max_length=5000, help_text="Why the access is needed.")
    beneficiary = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True),
        required=False,
        allow_null=True,
        default=None,
        help_text="Request on behalf of this user; empty: for the caller.",
    )

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None and request.user.is_authenticated:
            fields["role"].queryset = roles_open_to(request.user)
        return fields


class AccessDecisionInputSerializer(StrictSerializer):
    comment = serializers.CharField(
        max_length=5000, required=False, allow_blank=True, default="", help_text="Shown in the history."
    )


class AccessTicketCloseSerializer(StrictSerializer):
    note = serializers.CharField(
        max_length=5000, required=False, allow_blank=True, default="", help_text="What was done, by hand."
    )


class NoInputSerializer(StrictSerializer):
    """An action without parameters: an empty body or ``{}``; any field is refused."""


class AccessDecisionSerializer(serializers.ModelSerializer):
    class Meta:
        model = AccessDecision
        fields = ["id", "step", "approver", "approved", "automatic", "comment", "decided_at"]
        read_only_fields = fields


class AccessTicketSerializer(serializers.ModelSerializer):
    integration = serializers.IntegerField(source="request.integration_id", read_only=True)

    class Meta:
        model = AccessTicket
        fields = [
            "id",
            "request",
            "integration",
            "kind",
            "status",
            "assignee",
            "reason",
            "note",
            "opened_at",
            "closed_at",
            "closed_by",
        ]
        read_only_fields = fields


class StepApproverSerializer(serializers.Serializer):
    kind = serializers.CharField()
    label = serializers.CharField()
    automatic = serializers.BooleanField()
    users = serializers.ListField(child=serializers.IntegerField(), help_text="Who may approve this entry.")


class RequestStepSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    mode = serializers.ChoiceField(choices=["any", "all"])
    approvers = StepApproverSerializer(many=True)


class AccessRequestSerializer(serializers.ModelSerializer):
    resource = serializers.IntegerField(source="role.resource_id", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    pending_approvers = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    prerequisite_roles = serializers.PrimaryKeyRelatedField(
        many=True,
        read_only=True,
        help_text="Prerequisites the beneficiary lacked when filing: granted first, ended with the request.",
    )

    class Meta:
        model = AccessRequest
        fields = [
            "id",
            "status",
            "status_label",
            "requester",
            "beneficiary",
            "integration",
            "resource",
            "role",
            "prerequisite_roles",
            "duration",
            "justification",
            "workflow",
            "current_step",
            "pending_approvers",
            "account",
            "created_account",
            "error",
            "attempts",
            "revoked_by",
            "created_at",
            "decided_at",
            "granted_at",
            "expires_at",
            "ended_at",
            "updated_at",
        ]
        read_only_fields = fields


class AccessRequestDetailSerializer(AccessRequestSerializer):
    steps = RequestStepSerializer(
        many=True, read_only=True, help_text="The approval steps as snapshotted when the request was filed."
    )
    decisions = AccessDecisionSerializer(many=True, read_only=True)
    tickets = AccessTicketSerializer(many=True, read_only=True)
    permissions = PermissionSerializer(
        many=True, read_only=True, help_text="The permissions written for this request."
    )
    history = serializers.SerializerMethodField(help_text="The audit events about the request, oldest first.")

    class Meta(AccessRequestSerializer.Meta):
        fields = [
            *AccessRequestSerializer.Meta.fields,
            "steps",
            "decisions",
            "tickets",
            "permissions",
            "history",
        ]
        read_only_fields = fields

    @extend_schema_field(AuditEventSerializer(many=True))
    def get_history(self, obj):
        return AuditEventSerializer(access_request_events(obj)[:500], many=True).data
