"""The audit log's FilterSet: the audit screen, its CSV export and the API use it."""

from datetime import UTC, timedelta

import django_filters as filters
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q
from django_filters.fields import IsoDateTimeField

from .models import AuditEvent, Job


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, normalised to UTC: an offset the database cannot store is refused."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return value
        try:
            if value.utcoffset() is not None and abs(value.utcoffset()) >= timedelta(hours=16):
                raise ValueError
            return value.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValidationError("Enter a valid date/time with a UTC offset under 16 hours.") from None


class IsoDateTimeFilter(filters.IsoDateTimeFilter):
    """``IsoDateTimeFilter`` whose values always fit the database (see UtcIsoDateTimeField)."""

    field_class = UtcIsoDateTimeField


class AuditEventFilter(filters.FilterSet):
    q = filters.CharFilter(method="search", label="Search")
    actor = filters.ModelChoiceFilter(queryset=lambda request: get_user_model().objects.all())
    action = filters.CharFilter(lookup_expr="istartswith")
    integration = filters.NumberFilter(field_name="integration_id")
    since = IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")
    date_from = filters.DateFilter(field_name="occurred_at", lookup_expr="date__gte", label="From")
    date_to = filters.DateFilter(field_name="occurred_at", lookup_expr="date__lte", label="To")

    class Meta:
        model = AuditEvent
        fields = ["q", "actor", "action", "integration", "status", "correlation_id", "date_from", "date_to"]

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(object_repr__icontains=value) | Q(actor_repr__icontains=value) | Q(action__icontains=value)
        )


class JobFilter(filters.FilterSet):
    integration = filters.NumberFilter(field_name="integration_id")

    class Meta:
        model = Job
        fields = ["kind", "status", "integration"]
