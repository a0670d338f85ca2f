"""People over the API: the list (the People screen's filters) and a person's detail, read-only for now;
identity sources (admins only): list, read, create, change, apply now, confirm or discard a held run.

Thin like the other endpoints: the queryset is the people the caller may see (``rights.visible_people``,
the screens' rule: admins everybody, others themselves and their direct reports), so anybody else answers
404 like an id that does not exist.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from governance.api import FIELDS_PARAM, IsAuthenticatedUser, ScopedViewSet
from integrations.api.permissions import IsAdmin

from .. import services
from ..filters import PersonFilter
from ..models import IdentitySource, Person
from ..rights import visible_people
from ..selectors import person_rows
from . import serializers as s


@extend_schema_view(
    list=extend_schema(
        parameters=[FIELDS_PARAM],
        description="The people the caller may see: admins everybody, others themselves and their direct "
        "reports. `?q=` searches usernames, names, emails and employee ids; "
        "`?terminated_with_access=true` lists terminated people whose accounts still hold live permissions.",
    ),
    retrieve=extend_schema(
        parameters=[FIELDS_PARAM],
        description="A person with the accounts linked to them in every integration and the live permissions "
        "of those accounts, each with how it came to be held (`provenance`): granted by an access request "
        "(and who approved it), found in the application, implied by another role the account holds, a "
        "birthright. 404 when the caller may not see the person.",
    ),
)
class PersonViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    serializer_class = s.PersonSerializer
    detail_serializer_class = s.PersonDetailSerializer
    queryset = Person.objects.none()
    filterset_class = PersonFilter
    http_method_names = ["get", "head", "options"]
    cursor_ordering = "pk"
    lookup_url_kwarg = "id"  # a person's id is their user's (the primary key is named ``user``)

    def scoped(self, user):
        return person_rows(visible_people(user))


@extend_schema_view(
    list=extend_schema(
        description="Identity sources (admins only): integrations whose accounts make people."
    ),
    retrieve=extend_schema(description="An identity source with its mapping and its held run, if any."),
    create=extend_schema(
        description="Make an integration an identity source. The mapping (person field → account "
        "attribute) is checked against the connector's account schema; `employee_id` or `username` must be "
        "mapped (the key that matches an account to its person)."
    ),
    partial_update=extend_schema(description="Change an identity source (the integration stays)."),
)
class IdentitySourceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    ScopedViewSet,
):
    serializer_class = s.IdentitySourceSerializer
    queryset = IdentitySource.objects.none()
    permission_classes = [IsAuthenticatedUser, IsAdmin]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def scoped(self, user):
        return IdentitySource.objects.select_related("integration")

    def create(self, request, *args, **kwargs):
        source = services.identity_source_save(actor=request.user, source=IdentitySource(**self._validated()))
        return self._out(source, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        source = self.get_object()
        data = self._validated(source, partial=True)
        data.pop("integration", None)
        for name, value in data.items():
            setattr(source, name, value)
        services.identity_source_save(actor=request.user, source=source)
        return self._out(source)

    @extend_schema(request=None, responses={200: s.IdentitySourceRunSerializer})
    @action(detail=True, methods=["post"])
    def apply(self, request, pk=None):
        """Apply the source now to the accounts its integration's last sync found."""
        summary = services.identity_source_apply(actor=request.user, source=self.get_object())
        return Response({"summary": summary})

    @extend_schema(request=None, responses={200: s.IdentitySourceRunSerializer})
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        """Apply the held run, the mass-leaver guard waived once."""
        summary = services.identity_source_confirm(actor=request.user, source=self.get_object())
        return Response({"summary": summary})

    @extend_schema(request=None, responses={200: s.IdentitySourceSerializer})
    @action(detail=True, methods=["post"])
    def discard(self, request, pk=None):
        """Drop the held run: people stay as they are."""
        source = self.get_object()
        services.identity_source_discard(actor=request.user, source=source)
        return self._out(source)
