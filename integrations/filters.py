"""One FilterSet per model: the list screens, the API, bulk "select all matching" and CSV export use these."""

import django_filters as filters
from django.contrib.auth import get_user_model
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from governance.filters import BooleanFilter, FilterSet, IsoDateTimeFilter

from .models import (
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


def all_users(request=None):
    return get_user_model().objects.all()


def _visible(model):
    """Choices limited to what the requesting user manages: an id they may not see is refused exactly
    like an id that does not exist, so a filter never tells whether a hidden object exists."""

    def queryset(request=None):
        from . import rights

        if request is None:
            return model.objects.all()
        return {
            Integration: rights.manageable_integrations,
            Resource: rights.manageable_resources,
            Role: rights.manageable_roles,
            Account: rights.manageable_accounts,
        }[model](request.user)

    return queryset


class IntegrationFilter(SearchMixin):
    search_fields = ("name", "application")
    application = filters.CharFilter()
    owner = filters.ModelChoiceFilter(queryset=all_users)
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
    owner = filters.ModelChoiceFilter(queryset=all_users)
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
    """``correlated``: false for the accounts nobody is known to hold (linked to no person and no service
    account; with ``removed=false``, the uncorrelated accounts), true for the others."""

    search_fields = ("identity", "external_id", "email")
    # No DISTINCT (no join to repeat a row): counting a million accounts stays an index scan.
    integration = filters.ModelMultipleChoiceFilter(queryset=_visible(Integration), distinct=False)
    correlated = BooleanFilter(method="filter_correlated", label="Correlated")
    service_account = BooleanFilter(label="Service account")
    user = filters.ModelChoiceFilter(queryset=all_users, label="Linked to")
    linked = BooleanFilter(field_name="user", lookup_expr="isnull", exclude=True, label="Linked to a user")
    link_source = filters.ChoiceFilter(
        choices=[(v, label) for v, label in Account.LinkSource.choices if v], label="How linked"
    )
    owner = filters.ModelChoiceFilter(queryset=all_users, label="Service account owner")
    hidden_on_screens = ("owner",)  # set by links: a second picker of every user costs the list its time

    class Meta:
        model = Account
        fields = ["q", "integration", "correlated", "service_account", "user", "link_source", "enabled"]

    def filter_correlated(self, queryset, name, value):
        nobody = Q(user=None, service_account=False)
        return queryset.exclude(nobody) if value else queryset.filter(nobody)


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
