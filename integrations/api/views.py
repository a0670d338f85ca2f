"""Endpoints of the REST API. Thin: scope the queryset by who asks, validate, call one service."""

from __future__ import annotations

import json

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from governance import audit
from governance.api import (
    FIELDS_PARAM,
    LIST,
    NO_BODY,
    RETRIEVE,
    CSVRenderer,
    IsAuthenticatedUser,
    ScopedViewSet,
    stream_csv,
)
from governance.filters import AuditEventFilter, JobFilter
from governance.models import AuditEvent, Job

from .. import services
from ..filters import (
    AccountFilter,
    IntegrationFilter,
    PermissionFilter,
    ResourceFilter,
    RoleFilter,
    RuleFilter,
    WorkflowFilter,
)
from ..models import ApprovalWorkflow, Integration, Rule
from ..rights import (
    is_admin,
    manageable_accounts,
    manageable_integrations,
    manageable_permissions,
    manageable_resources,
    manageable_roles,
)
from ..services import rules as rule_services
from ..services import workflows as workflow_services
from ..services.accounts import account_link, account_set_service
from ..sync import sync_start
from . import serializers as s
from .permissions import AdminForWrites, CanDeleteIntegration, ManagesInventory


class InventoryViewSet(ScopedViewSet):
    """Base of the inventory endpoints: managers only."""

    permission_classes = [IsAuthenticatedUser, ManagesInventory]


# -- integrations -----------------------------------------------------------------------------------------


@extend_schema_view(
    list=LIST,
    retrieve=RETRIEVE,
    create=extend_schema(
        description="Create an integration (admins). Secret connection items are write-only."
    ),
    partial_update=extend_schema(
        description="Change an integration. `connection_config` replaces the plain items; secret items "
        "left out or empty keep their stored value."
    ),
    destroy=extend_schema(
        description="Delete an integration and its inventory (admins), as a job: answers 202 with the job at "
        "once; follow it with GET /api/jobs/{id}/. While a deletion of the integration is queued or running "
        "the returned job is `skipped`.",
        responses={202: s.JobSerializer},
    ),
)
class IntegrationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, InventoryViewSet
):
    serializer_class = s.IntegrationSerializer
    queryset = Integration.objects.none()
    filterset_class = IntegrationFilter
    permission_classes = [IsAuthenticatedUser, ManagesInventory, AdminForWrites, CanDeleteIntegration]
    admin_actions = {"create"}

    def scoped(self, user):
        return manageable_integrations(user).prefetch_related("maintainers")

    def create(self, request, *args, **kwargs):
        data = self._validated()
        integration = services.integration_create(actor=request.user, **data)
        return self._out(integration, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        integration = self.get_object()
        data = self._validated(integration, partial=True)
        services.integration_update(actor=request.user, integration=integration, **data)
        return self._out(integration)

    def destroy(self, request, *args, **kwargs):
        job = services.integration_delete_start(actor=request.user, integration=self.get_object())
        return Response(s.JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=s.SyncRequestSerializer,
        responses={202: s.JobSerializer},
        description="Queue a sync; follow it with GET /api/jobs/{id}/. While another sync of the integration "
        "is queued or running the returned job is `skipped`.",
    )
    @action(detail=True, methods=["post"])
    def sync(self, request, pk=None):
        integration = self.get_object()
        serializer = s.SyncRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = sync_start(
            actor=request.user, integration=integration, full=serializer.validated_data.get("full")
        )
        return Response(s.JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: s.ConnectionTestSerializer})
    @action(detail=True, methods=["post"], url_path="test-connection")
    def test_connection(self, request, pk=None):
        integration = self.get_object()
        ok, message = services.integration_test_connection(actor=request.user, integration=integration)
        return Response({"ok": ok, "message": message})


# -- resources and roles ----------------------------------------------------------------------------------


@extend_schema_view(list=LIST, retrieve=RETRIEVE)
class ResourceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, InventoryViewSet):
    """Resources are discovered by syncs: they are read and governed here, not created."""

    serializer_class = s.ResourceSerializer
    detail_serializer_class = s.ResourceDetailSerializer
    queryset = s.Resource.objects.none()
    filterset_class = ResourceFilter

    def scoped(self, user):
        return (
            manageable_resources(user).select_related("integration").prefetch_related("tags", "maintainers")
        )

    @extend_schema(request=s.ResourceSerializer, responses=s.ResourceDetailSerializer)
    def partial_update(self, request, *args, **kwargs):
        resource = self.get_object()
        data = self._validated(resource, partial=True)
        services.resource_update(actor=request.user, resource=resource, **data)
        return self._out(resource)


@extend_schema_view(list=LIST, retrieve=RETRIEVE)
class RoleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, InventoryViewSet):
    """Roles are discovered by syncs: they are read and governed here, not created."""

    serializer_class = s.RoleSerializer
    detail_serializer_class = s.RoleDetailSerializer
    queryset = s.Role.objects.none()
    filterset_class = RoleFilter

    def scoped(self, user):
        return (
            manageable_roles(user)
            .select_related("resource__integration")
            .prefetch_related("tags", "implications")
        )

    @extend_schema(request=s.RoleSerializer, responses=s.RoleDetailSerializer)
    def partial_update(self, request, *args, **kwargs):
        role = self.get_object()
        data = self._validated(role, partial=True)
        implied = data.pop("implies", None)
        with transaction.atomic():
            services.role_update(actor=request.user, role=role, **data)
            if implied is not None:
                services.role_set_implied_roles(actor=request.user, role=role, implied=implied)
        return self._out(role)


@extend_schema_view(list=LIST, retrieve=RETRIEVE)
class AccountViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, InventoryViewSet):
    """Accounts are discovered by syncs; who holds one is set here (``rights.account_link_refusal`` and
    ``rights.account_service_refusal``, the screens' rule)."""

    serializer_class = s.AccountSerializer
    queryset = s.Account.objects.none()
    filterset_class = AccountFilter

    def scoped(self, user):
        return manageable_accounts(user)

    @extend_schema(
        request=s.AccountLinkSerializer,
        responses={200: s.AccountSerializer},
        description="Link the account to a person (`user`), or to nobody (`null`); syncs keep it.",
    )
    @action(detail=True, methods=["post"])
    def link(self, request, pk=None):
        return self._decide(s.AccountLinkSerializer, account_link)

    @extend_schema(
        request=s.AccountServiceSerializer,
        responses={200: s.AccountSerializer},
        description="Make the account a service account answered for by `owner` (its user is cleared), or "
        "with `null` a personal account again.",
    )
    @action(detail=True, methods=["post"], url_path="service-account")
    def service_account(self, request, pk=None):
        return self._decide(s.AccountServiceSerializer, account_set_service)

    def _decide(self, serializer_class, service):
        """Validate the body, then ``service(actor=, account=, <its field>=)``; answer the account."""
        account = self.get_object()
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        service(actor=self.request.user, account=account, **serializer.validated_data)
        return self._out(account)


@extend_schema_view(list=LIST, retrieve=RETRIEVE)
class PermissionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, InventoryViewSet):
    serializer_class = s.PermissionSerializer
    queryset = s.Permission.objects.none()
    filterset_class = PermissionFilter

    def scoped(self, user):
        return manageable_permissions(user).select_related("role")


# -- workflows and rules ----------------------------------------------------------------------------------


@extend_schema_view(list=LIST, retrieve=RETRIEVE, destroy=extend_schema(responses={204: NO_BODY}))
class WorkflowViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, InventoryViewSet
):
    """Approval workflows: read by every manager, written by admins. Steps are written whole."""

    serializer_class = s.WorkflowSerializer
    queryset = ApprovalWorkflow.objects.none()
    filterset_class = WorkflowFilter
    permission_classes = [IsAuthenticatedUser, ManagesInventory, AdminForWrites]

    def scoped(self, user):
        return ApprovalWorkflow.objects.prefetch_related(
            "steps__approvers", "rules__requester_groups", "rules__steps__approvers"
        )

    @staticmethod
    def _steps(steps):
        if steps is None:
            return None
        return [
            {"mode": st.get("mode"), "approvers": [dict(a) for a in st.get("approvers", [])]} for st in steps
        ]

    @classmethod
    def _rules(cls, rules):
        if rules is None:
            return None
        return [
            {
                "max_duration": r.get("max_duration") or "",
                "requester_groups": list(r.get("requester_groups") or []),
                "steps": cls._steps(r.get("steps") or []),
            }
            for r in rules
        ]

    def create(self, request, *args, **kwargs):
        data = self._validated()
        steps, rules = self._steps(data.pop("steps", None)), self._rules(data.pop("rules", None))
        workflow = workflow_services.workflow_create(actor=request.user, steps=steps, rules=rules, **data)
        return self._out(workflow, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        workflow = self.get_object()
        data = self._validated(workflow, partial=True)
        steps, rules = self._steps(data.pop("steps", None)), self._rules(data.pop("rules", None))
        workflow_services.workflow_update(
            actor=request.user, workflow=workflow, steps=steps, rules=rules, **data
        )
        return self._out(workflow)

    def perform_destroy(self, instance):
        workflow_services.workflow_delete(actor=self.request.user, workflow=instance)


class RuleApplySerializer(s.serializers.Serializer):
    changed = s.serializers.IntegerField(help_text="How many objects the rule changed.")


@extend_schema_view(list=LIST, retrieve=RETRIEVE, destroy=extend_schema(responses={204: NO_BODY}))
class RuleViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, InventoryViewSet
):
    """Rules: read by every manager, written and applied by admins."""

    serializer_class = s.RuleSerializer
    queryset = Rule.objects.none()
    filterset_class = RuleFilter
    permission_classes = [IsAuthenticatedUser, ManagesInventory, AdminForWrites]

    def scoped(self, user):
        return Rule.objects.all()

    def create(self, request, *args, **kwargs):
        rule = rule_services.rule_create(actor=request.user, **self._validated())
        return self._out(rule, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        rule = self.get_object()
        rule_services.rule_update(actor=request.user, rule=rule, **self._validated(rule, partial=True))
        return self._out(rule)

    def perform_destroy(self, instance):
        rule_services.rule_delete(actor=self.request.user, rule=instance)

    @extend_schema(request=None, responses={200: RuleApplySerializer})
    @action(detail=True, methods=["post"])
    def apply(self, request, pk=None):
        """Apply the rule now to the existing objects it matches."""
        changed = rule_services.rule_apply(actor=request.user, rule=self.get_object())
        return Response({"changed": changed})


# -- jobs and the audit log -------------------------------------------------------------------------------


def _integration_ids(user):
    return manageable_integrations(user).values("pk")


@extend_schema_view(list=LIST, retrieve=RETRIEVE)
class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, InventoryViewSet):
    """Syncs and bulk operations with their progress, of the integrations the caller manages."""

    serializer_class = s.JobSerializer
    queryset = Job.objects.none()
    filterset_class = JobFilter
    cursor_ordering = ("-created_at", "-id")

    def scoped(self, user):
        if is_admin(user):
            return Job.objects.all()
        return Job.objects.filter(integration_id__in=_integration_ids(user))

    @extend_schema(request=None, responses={200: s.JobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Ask the job to stop: a queued job is cancelled at once, a running one at its next check."""
        job = services.job_stop(actor=request.user, job=self.get_object())
        return Response(s.JobSerializer(job).data)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            FIELDS_PARAM,
            OpenApiParameter(
                "format",
                OpenApiTypes.STR,
                enum=["json", "csv"],
                description="csv: stream every match as CSV.",
            ),
        ],
        description="The audit log, newest first. `?format=csv` (or `Accept: text/csv`) streams every "
        "matching event as CSV instead of a page.",
    ),
    retrieve=RETRIEVE,
)
class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, InventoryViewSet):
    """The audit log of the integrations the caller manages (admins: all of it). Read-only."""

    serializer_class = s.AuditEventSerializer
    queryset = AuditEvent.objects.none()
    filterset_class = AuditEventFilter
    renderer_classes = [JSONRenderer, CSVRenderer]
    cursor_ordering = "-id"

    def scoped(self, user):
        events = AuditEvent.objects.select_related("object_type")
        if is_admin(user):
            return events
        return events.filter(integration_id__in=_integration_ids(user))

    def list(self, request, *args, **kwargs):
        if getattr(request.accepted_renderer, "format", None) != "csv":
            return super().list(request, *args, **kwargs)
        events = self.filter_queryset(self.get_queryset()).order_by("-id")

        def rows():
            for e in events.iterator(chunk_size=2000):
                ct = e.object_type
                yield [
                    e.occurred_at.isoformat(),
                    e.actor_repr,
                    e.action,
                    f"{ct.app_label}.{ct.model}" if ct else "",
                    e.object_id,
                    e.object_repr,
                    e.integration_id if e.integration_id is not None else "",
                    e.status,
                    e.correlation_id,
                    json.dumps(e.details, sort_keys=True),
                ]

        return stream_csv(audit.CSV_COLUMNS, rows(), "audit-log.csv")
