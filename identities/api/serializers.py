"""Serializers of the people endpoints: read-only, a person with their user's fields; their detail adds the
accounts linked to them and their live permissions, each with how it came to be held; identity sources."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from integrations.api.serializers import AccountSerializer, PermissionSerializer

from ..models import IdentitySource, Person
from ..selectors import SHOWN, Bounded, bounded, person_accounts, person_permissions, provenance


class PersonSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="pk", read_only=True, help_text="The id of the person's user.")
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.CharField(source="user.email", read_only=True)
    first_name = serializers.CharField(source="user.first_name", read_only=True)
    last_name = serializers.CharField(source="user.last_name", read_only=True)
    name = serializers.CharField(read_only=True, help_text="The display name, else first and last name.")
    department = serializers.CharField(source="user.department", read_only=True)
    title = serializers.CharField(source="user.title", read_only=True)
    manager = serializers.IntegerField(
        source="user.manager_id", read_only=True, allow_null=True, help_text="The manager's person id."
    )
    status_label = serializers.CharField(source="get_status_display", read_only=True)

    class Meta:
        model = Person
        fields = [
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "name",
            "display_name",
            "employee_id",
            "department",
            "title",
            "location",
            "manager",
            "status",
            "status_label",
            "start_date",
            "end_date",
            "source",
            "attributes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ProvenanceSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["request", "portal", "external", "birthright", "implied"])
    label = serializers.CharField(help_text='E.g. "granted by access request #12 (approved by …)".')
    url = serializers.CharField(help_text="Its page on the screens; empty where the caller may not open it.")


class HeldPermissionSerializer(PermissionSerializer):
    role_name = serializers.CharField(source="role.name", read_only=True)
    resource_name = serializers.CharField(source="role.resource.name", read_only=True)
    account_identity = serializers.CharField(source="account.identity", read_only=True)
    provenance = serializers.SerializerMethodField(help_text="How the permission came to be held.")

    class Meta(PermissionSerializer.Meta):
        fields = [
            *PermissionSerializer.Meta.fields,
            "role_name",
            "resource_name",
            "account_identity",
            "provenance",
        ]
        read_only_fields = fields

    @extend_schema_field(ProvenanceSerializer(many=True))
    def get_provenance(self, obj):
        return self.context["provenance"].get(obj.pk, [])


class PersonDetailSerializer(PersonSerializer):
    accounts = serializers.SerializerMethodField(
        help_text=f"The accounts linked to the person in every integration (the first {SHOWN})."
    )
    accounts_total = serializers.SerializerMethodField()
    permissions = serializers.SerializerMethodField(
        help_text=f"The live permissions of those accounts, with their provenance (the first {SHOWN})."
    )
    permissions_total = serializers.SerializerMethodField()

    class Meta(PersonSerializer.Meta):
        fields = [
            *PersonSerializer.Meta.fields,
            "accounts",
            "accounts_total",
            "permissions",
            "permissions_total",
        ]
        read_only_fields = fields

    def _list(self, name: str, obj: Person) -> Bounded:
        cache = self.__dict__.setdefault("_lists", {})
        if name not in cache:
            cache[name] = bounded((person_accounts if name == "accounts" else person_permissions)(obj))
        return cache[name]

    @extend_schema_field(AccountSerializer(many=True))
    def get_accounts(self, obj):
        return AccountSerializer(self._list("accounts", obj).rows, many=True).data

    def get_accounts_total(self, obj) -> int:
        return self._list("accounts", obj).total

    @extend_schema_field(HeldPermissionSerializer(many=True))
    def get_permissions(self, obj):
        rows = self._list("permissions", obj).rows
        request = self.context.get("request")
        how = provenance(rows, viewer=request.user if request is not None else None)
        return HeldPermissionSerializer(rows, many=True, context={"provenance": how}).data

    def get_permissions_total(self, obj) -> int:
        return self._list("permissions", obj).total


class IdentitySourceSerializer(serializers.ModelSerializer):
    """An identity source. ``integration`` is set at creation and never changes; the held run
    (``pending_since``, ``pending_summary``) and the last applied one are read-only."""

    integration_name = serializers.CharField(source="integration.name", read_only=True)

    class Meta:
        model = IdentitySource
        fields = [
            "id",
            "integration",
            "integration_name",
            "position",
            "mapping",
            "manager_key",
            "status_values",
            "leaver_limit_percent",
            "enabled",
            "last_applied_at",
            "last_summary",
            "pending_since",
            "pending_summary",
        ]
        read_only_fields = ["last_applied_at", "last_summary", "pending_since", "pending_summary"]
        # The one-to-one's uniqueness is the service's to say (with the model's other checks).
        extra_kwargs = {"integration": {"validators": []}}


class IdentitySourceRunSerializer(serializers.Serializer):
    summary = serializers.JSONField(help_text="The run's counts (created, updated, terminated...).")
