"""The FilterSets of just-in-time access: the request screens and the API use these."""

import django_filters as filters
from django.db.models import Q

from governance.filters import BooleanFilter, FilterSet, IsoDateTimeFilter
from integrations import rights
from integrations.filters import SearchMixin, all_users
from integrations.models import Integration, Role

from . import selectors
from .models import AccessRequest, AccessTicket


def _requested(model):
    """Choices of the access-request filters: the integrations (roles) the caller manages or has a
    request about that they may see. Any other id is refused exactly like one that does not exist."""

    def queryset(request=None):
        if request is None:
            return model.objects.all()
        user = request.user
        seen = selectors.visible_access_requests(user)
        if model is Integration:
            return Integration.objects.filter(
                Q(pk__in=rights.manageable_integrations(user).values("pk"))
                | Q(pk__in=seen.values("integration_id"))
            )
        return Role.objects.filter(
            Q(pk__in=rights.manageable_roles(user).values("pk")) | Q(pk__in=seen.values("role_id"))
        )

    return queryset


class AccessRequestFilter(SearchMixin):
    search_fields = (
        "justification",
        "role__name",
        "role__resource__name",
        "integration__name",
        "requester__username",
        "beneficiary__username",
    )
    status = filters.MultipleChoiceFilter(choices=AccessRequest.Status.choices)
    open = BooleanFilter(method="filter_open", label="Open (pending, being granted or granted)")
    integration = filters.ModelMultipleChoiceFilter(queryset=_requested(Integration))
    role = filters.ModelChoiceFilter(queryset=_requested(Role))
    requester = filters.ModelChoiceFilter(queryset=all_users)
    beneficiary = filters.ModelChoiceFilter(queryset=all_users)
    awaiting_me = BooleanFilter(method="filter_awaiting_me", label="Waiting for my approval")
    created_since = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_until = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AccessRequest
        fields = ["q", "status", "open", "integration", "role", "requester", "beneficiary", "awaiting_me"]

    def filter_open(self, queryset, name, value):  # django-filter skips an unset value
        condition = Q(status__in=AccessRequest.OPEN)
        return queryset.filter(condition) if value else queryset.exclude(condition)

    def filter_awaiting_me(self, queryset, name, value):  # the API's callers are signed in
        waiting = AccessRequest.objects.filter(
            status=AccessRequest.Status.PENDING, pending_approvers=self.request.user
        ).values("pk")
        return queryset.filter(pk__in=waiting) if value else queryset.exclude(pk__in=waiting)


class AccessTicketFilter(FilterSet):
    request = filters.NumberFilter(field_name="request_id")
    integration = filters.ModelMultipleChoiceFilter(
        field_name="request__integration", queryset=_requested(Integration)
    )
    assignee = filters.ModelChoiceFilter(queryset=all_users)
    assigned_to_me = BooleanFilter(method="filter_assigned_to_me", label="Assigned to me")

    class Meta:
        model = AccessTicket
        fields = ["status", "kind", "request", "integration", "assignee", "assigned_to_me"]

    def filter_assigned_to_me(self, queryset, name, value):
        mine = Q(assignee=self.request.user)
        return queryset.filter(mine) if value else queryset.exclude(mine)
