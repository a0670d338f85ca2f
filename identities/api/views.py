"""People over the API: the list (the People screen's filters) and a person's detail, read-only for now.

Thin like the other endpoints: the queryset is the people the caller may see (``rights.visible_people``,
the screens' rule: admins everybody, others themselves and their direct reports), so anybody else answers
404 like an id that does not exist.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins

from governance.api import FIELDS_PARAM, ScopedViewSet

from ..filters import PersonFilter
from ..models import Person
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
