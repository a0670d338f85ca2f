"""One FilterSet per model: the list screens, the API, bulk "select all matching" and CSV export use these."""

import django_filters as filters
from django.contrib.auth import get_user_model
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from governance.filters import BooleanFilter, FilterSet, IsoDateTimeFilter

from .models import (
    AccessRequest,
    AccessTicket,
    Account,
    Agent,
    ApprovalWorkflow,
    Integration,
    Permission,
    Resource,
    Role,
    Rule,
    Tag,
)


class SearchMixin(FilterSet):
    """``q``: a case-insensitive search over the model's ``search_fields``.

    The model's own fields are searched together; each field across a relation (``resource__name``)
    matches through its own subquery, and the matches are combined by id (UNION ALL), so PostgreSQL
    answers every part from its trigram index (migration 0008) instead of joining the whole tables.
    """

    q = filters.CharFilter(method="search", label="Search")
    search_fields: tuple[str, ...] = ()

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        own = [f for f in self.search_fields if "__" not in f]
        related = [f for f in self.search_fields if "__" in f]
        condition = Q()
        for field in own:
            condition |= Q(**{f"{field}__icontains": value})
        if not related:
            return queryset.filter(condition)
        plain = queryset.model._base_manager.order_by()
        parts = [plain.filter(**{f"{field}__icontains": value}).values("pk") for field in related]
        if own:
            parts.insert(0, plain.filter(condition).values("pk"))
        first, *rest = parts
        return queryset.filter(pk__in=first.union(*rest, all=True) if rest else first)


class RemovedMixin(FilterSet):
    """``removed``: true for objects a sync no longer found in the application, false for present ones."""

    removed = BooleanFilter(field_name="removed_at", lookup_expr="isnull", exclude=True, label="Removed")


@extend_schema_field(OpenApiTypes.STR)
class TagNamesFilter(filters.ModelMultipleChoiceFilter):
    """Tags by name (repeatable)."""


class TagsMixin(FilterSet):
    """``tags``: objects carrying every named tag."""

    tags = TagNamesFilter(
        field_name="tags__name",
        to_field_name="name",
        queryset=Tag.objects.all(),
        conjoined=True,
        label="Tags",
    )


def _users(request=None):
    return get_user_model().objects.all()


def _visible(model):
    """Choices limited to what the requesting user manages: an id they may not see is refused exactly
    like an id that does not exist, so a filter never tells whether a hidden object exists."""

    def queryset(request=None):
        from . import access

        if request is None:
            return model.objects.all()
        return {
            Integration: access.manageable_integrations,
            Resource: access.manageable_resources,
            Role: access.manageable_roles,
            Account: access.manageable_accounts,
        }[model](request.user)

    return queryset


class IntegrationFilter(SearchMixin):
    search_fields = ("name", "application")
    application = filters.CharFilter()
    owner = filters.ModelChoiceFilter(queryset=_users)
    default_workflow = filters.ModelChoiceFilter(queryset=ApprovalWorkflow.objects.all())
    agent = filters.ModelChoiceFilter(queryset=Agent.objects.all())
    cloud = BooleanFilter(field_name="agent", lookup_expr="isnull", label="In the cloud")

    class Meta:
        model = Integration
        fields = [
            "q",
            "application",
            "owner",
            "default_workflow",
            "last_sync_status",
            "read_only",
            "requestable",
        ]


class ResourceFilter(SearchMixin, RemovedMixin, TagsMixin):
    search_fields = ("name", "description", "external_id")
    integration = filters.ModelMultipleChoiceFilter(queryset=_visible(Integration))
    owner = filters.ModelChoiceFilter(queryset=_users)
    has_owner = BooleanFilter(field_name="owner", lookup_expr="isnull", exclude=True, label="Has an owner")
    workflow = filters.ModelChoiceFilter(queryset=ApprovalWorkflow.objects.all())

    class Meta:
        model = Resource
        fields = [
            "q",
            "integration",
            "kind",
            "owner",
            "requestable",
            "workflow",
            "override_allowed_durations",
        ]


class RoleFilter(SearchMixin, RemovedMixin, TagsMixin):
    search_fields = ("name", "external_id", "resource__name")
    integration = filters.ModelMultipleChoiceFilter(queryset=_visible(Integration))
    resource = filters.ModelChoiceFilter(queryset=_visible(Resource))
    workflow = filters.ModelChoiceFilter(queryset=ApprovalWorkflow.objects.all())

    class Meta:
        model = Role
        fields = [
            "q",
            "integration",
            "resource",
            "name",
            "requestable",
            "workflow",
            "override_allowed_durations",
        ]


class AccountFilter(SearchMixin, RemovedMixin):
    search_fields = ("identity", "external_id", "email")
    integration = filters.ModelMultipleChoiceFilter(queryset=_visible(Integration))
    user = filters.ModelChoiceFilter(queryset=_users)
    linked = BooleanFilter(field_name="user", lookup_expr="isnull", exclude=True, label="Linked to a user")

    class Meta:
        model = Account
        fields = ["q", "integration", "user", "enabled"]


class PermissionFilter(FilterSet):
    integration = filters.ModelMultipleChoiceFilter(queryset=_visible(Integration))
    account = filters.ModelChoiceFilter(queryset=_visible(Account))
    role = filters.ModelChoiceFilter(queryset=_visible(Role))
    resource = filters.ModelChoiceFilter(field_name="role__resource", queryset=_visible(Resource))
    active = BooleanFilter(field_name="ended_at", lookup_expr="isnull", label="Active")
    expires_before = IsoDateTimeFilter(field_name="expires_at", lookup_expr="lt")

    class Meta:
        model = Permission
        fields = ["integration", "account", "role", "resource", "source", "active", "expires_before"]


class WorkflowFilter(SearchMixin):
    search_fields = ("name", "description")

    class Meta:
        model = ApprovalWorkflow
        fields = ["q"]


class RuleFilter(SearchMixin):
    search_fields = ("name", "description")

    class Meta:
        model = Rule
        fields = ["q", "target", "scope", "enabled"]


def _requested(model):
    """Choices of the access-request filters: the integrations (roles) the caller manages or has a
    request about that they may see. Any other id is refused exactly like one that does not exist."""

    def queryset(request=None):
        from . import access, selectors

        if request is None:
            return model.objects.all()
        user = request.user
        seen = selectors.visible_access_requests(user)
        if model is Integration:
            return Integration.objects.filter(
                Q(pk__in=access.manageable_integrations(user).values("pk"))
                | Q(pk__in=seen.values("integration_id"))
            )
        return Role.objects.filter(
            Q(pk__in=access.manageable_roles(user).values("pk")) | Q(pk__in=seen.values("role_id"))
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
    requester = filters.ModelChoiceFilter(queryset=_users)
    beneficiary = filters.ModelChoiceFilter(queryset=_users)
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
    assignee = filters.ModelChoiceFilter(queryset=_users)
    assigned_to_me = BooleanFilter(method="filter_assigned_to_me", label="Assigned to me")

    class Meta:
        model = AccessTicket
        fields = ["status", "kind", "request", "integration", "assignee", "assigned_to_me"]

    def filter_assigned_to_me(self, queryset, name, value):
        mine = Q(assignee=self.request.user)
        return queryset.filter(mine) if value else queryset.exclude(mine)
