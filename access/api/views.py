"""Just-in-time access over the API: file, list, decide, cancel and end access requests; close tickets.

Thin like the other endpoints: the queryset is the caller's visible requests (the selector the
request screens use, so a request the caller may not see is 404 like one that does not exist),
input is validated by a strict serializer, and the work is one call of
``access/services/``, whose refusals answer in the common error shape:
400 for what is wrong with the request (not requestable, a duration not allowed, deciding
twice, no longer pending), 403 for who is asking (not an approver, one's own request).
"""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action

from governance.api import FIELDS_PARAM, RETRIEVE, ScopedViewSet
from integrations.models import Permission

from .. import services
from ..filters import AccessRequestFilter, AccessTicketFilter
from ..models import AccessRequest, AccessTicket
from ..selectors import visible_access_requests
from . import serializers as s

ACTION_ERRORS = (
    "400 when the request is no longer pending or the caller already decided this step; 403 when "
    "the caller is not an approver of the current step, or filed the request or benefits from it; "
    "404 when the caller may not see the request."
)


def _decision(verb: str) -> dict:
    return {
        "request": s.AccessDecisionInputSerializer,
        "responses": {200: s.AccessRequestDetailSerializer},
        "description": f"{verb} the current step of the request as one of its approvers. " + ACTION_ERRORS,
    }


@extend_schema_view(
    list=extend_schema(
        parameters=[FIELDS_PARAM],
        description="The access requests the caller may see, newest first: their own (filed or for "
        "them), those waiting for their approval or that they decided, those whose tickets they hold, "
        "and those of the integrations they manage (admins: all). `?awaiting_me=true` lists what "
        "waits for the caller's approval.",
    ),
    retrieve=extend_schema(
        parameters=[FIELDS_PARAM],
        description="A request with its approval steps, decisions, tickets, permissions and history.",
    ),
    create=extend_schema(
        request=s.AccessRequestCreateSerializer,
        responses={201: s.AccessRequestDetailSerializer},
        description="Request a role for a duration, for the caller or on behalf of `beneficiary`. "
        "Prerequisite roles the beneficiary lacks are added to the request (`prerequisite_roles`). "
        "400 when the role is not requestable, the duration is not allowed, a request for the same "
        "role is already waiting, or no workflow applies.",
    ),
)
class AccessRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, ScopedViewSet
):
    serializer_class = s.AccessRequestSerializer
    detail_serializer_class = s.AccessRequestDetailSerializer
    queryset = AccessRequest.objects.none()
    filterset_class = AccessRequestFilter
    http_method_names = ["get", "post", "head", "options"]
    cursor_ordering = ("-created_at", "-id")

    def scoped(self, user):
        requests = visible_access_requests(user).prefetch_related("pending_approvers", "prerequisite_roles")
        if self.action == "list":
            return requests.select_related("role")
        return requests.select_related("role").prefetch_related(
            "decisions",
            "tickets__request",
            Prefetch("permissions", queryset=Permission.objects.select_related("role")),
        )

    def create(self, request, *args, **kwargs):
        serializer = s.AccessRequestCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        access = services.access_request_create(actor=request.user, **serializer.validated_data)
        return self._out(access, status.HTTP_201_CREATED)

    def _decide(self, decide):
        access = self.get_object()
        serializer = s.AccessDecisionInputSerializer(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        decide(actor=self.request.user, request=access, comment=serializer.validated_data["comment"])
        return self._out(access)

    def _plain(self, act):
        access = self.get_object()
        s.NoInputSerializer(data=self.request.data).is_valid(raise_exception=True)
        act(actor=self.request.user, request=access)
        return self._out(access)

    @extend_schema(**_decision("Approve"))
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._decide(services.access_request_approve)

    @extend_schema(**_decision("Deny"))
    @action(detail=True, methods=["post"])
    def deny(self, request, pk=None):
        return self._decide(services.access_request_deny)

    @extend_schema(
        request=s.NoInputSerializer,
        responses={200: s.AccessRequestDetailSerializer},
        description="Withdraw a request still waiting for approval (its requester, its beneficiary or "
        "an admin; 403 for anyone else). 400 when it is no longer pending.",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._plain(services.access_request_cancel)

    @extend_schema(
        request=s.NoInputSerializer,
        responses={200: s.AccessRequestDetailSerializer},
        description="End the access early / give it up: the beneficiary, the requester or a manager of "
        "the integration. What the request granted is revoked through the connector (or a revoke "
        "ticket is opened for a read-only integration). 400 when there is no access to end, or when "
        "the connector fails (the revoke is then retried by the expiry pass; `error` says why).",
    )
    @action(detail=True, methods=["post"])
    def end(self, request, pk=None):
        return self._plain(services.access_request_revoke)


@extend_schema_view(
    list=extend_schema(
        parameters=[FIELDS_PARAM],
        description="Manual fulfilment tickets of read-only integrations, of the requests the caller "
        "may see. `?assigned_to_me=true&status=open`: the caller's work.",
    ),
    retrieve=RETRIEVE,
)
class AccessTicketViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    serializer_class = s.AccessTicketSerializer
    queryset = AccessTicket.objects.none()
    filterset_class = AccessTicketFilter
    http_method_names = ["get", "post", "head", "options"]
    cursor_ordering = ("-opened_at", "-id")

    def scoped(self, user):
        return AccessTicket.objects.filter(
            request__in=visible_access_requests(user).values("pk")
        ).select_related("request")

    @extend_schema(
        request=s.AccessTicketCloseSerializer,
        responses={200: s.AccessTicketSerializer},
        description="Say the work is done (the ticket's assignee or a manager of the integration): "
        "a grant ticket records the access as granted, a revoke ticket as ended. 403 when the caller "
        "may not close it, 400 when it is not open.",
    )
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        ticket = self.get_object()
        serializer = s.AccessTicketCloseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.access_ticket_close(
            actor=request.user, ticket=ticket, note=serializer.validated_data["note"]
        )
        return self._out(ticket)
