"""The people's FilterSet: the People list and the people API use it.

Choices that name people or integrations (a manager, an identity source) are limited to what the caller
may see: any other id is refused exactly like one that does not exist.
"""

import django_filters as filters
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q

from governance.filters import BooleanFilter
from integrations.filters import SearchMixin
from integrations.models import Integration, Permission

from .models import Person
from .rights import visible_people


def _managers(request=None):
    """Users who manage somebody, among the people the caller sees."""
    users = get_user_model().objects
    managers = users.filter(pk__in=users.filter(manager__isnull=False).values("manager_id"))
    if request is None:
        return managers
    return managers.filter(pk__in=visible_people(request.user).values("pk"))


def _sources(request=None):
    """Integrations that fed a person the caller sees."""
    if request is None:
        return Integration.objects.all()
    fed = visible_people(request.user).filter(source__isnull=False).values("source_id")
    return Integration.objects.filter(pk__in=fed)


def departments(queryset) -> list[str]:
    """The departments of the people in ``queryset``, for the screen's picker."""
    return list(
        queryset.exclude(user__department="")
        .order_by("user__department")
        .values_list("user__department", flat=True)
        .distinct()
    )


def live_access():
    """People whose user's accounts hold at least one live permission."""
    return Exists(Permission.objects.filter(account__user_id=OuterRef("user_id"), ended_at__isnull=True))


class PersonFilter(SearchMixin):
    search_fields = (
        "employee_id",
        "display_name",
        "user__username",
        "user__first_name",
        "user__last_name",
        "user__email",
    )
    department = filters.CharFilter(field_name="user__department", lookup_expr="iexact", label="Department")
    manager = filters.ModelChoiceFilter(field_name="user__manager", queryset=_managers, label="Manager")
    status = filters.MultipleChoiceFilter(choices=Person.Status.choices)
    source = filters.ModelMultipleChoiceFilter(queryset=_sources, label="Identity source")
    terminated_with_access = BooleanFilter(
        method="filter_terminated_with_access", label="Terminated with live access"
    )

    class Meta:
        model = Person
        fields = ["q", "department", "manager", "status", "source", "terminated_with_access"]

    def filter_terminated_with_access(self, queryset, name, value):  # django-filter skips an unset value
        condition = Q(status=Person.Status.TERMINATED) & live_access()
        return queryset.filter(condition) if value else queryset.exclude(condition)
