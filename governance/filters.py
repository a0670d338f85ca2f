"""The audit log's FilterSet: the audit screen, its CSV export and the API use it."""

from datetime import UTC, timedelta

import django_filters as filters
from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django_filters.fields import IsoDateTimeField
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS

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


class StrictNullBooleanSelect(forms.NullBooleanSelect):
    """Passes the raw value on, so the field can refuse what is neither true nor false."""

    def value_from_datadict(self, data, files, name):
        return data.get(name)


class StrictNullBooleanField(forms.NullBooleanField):
    """true/false (also 1/0, yes/no); empty or "unknown" for no filter; anything else is an error."""

    widget = StrictNullBooleanSelect

    def to_python(self, value):
        if value is None or isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("", "unknown"):
            return None
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ValidationError("Enter true or false.", code="invalid")


class BooleanFilter(filters.BooleanFilter):
    field_class = StrictNullBooleanField


class FilterSet(filters.FilterSet):
    """Base of every FilterSet: a boolean parameter that is not true or false is refused, not ignored."""

    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.BooleanField: {"filter_class": BooleanFilter},
    }


class AuditEventFilter(FilterSet):
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


class JobFilter(FilterSet):
    integration = filters.NumberFilter(field_name="integration_id")

    class Meta:
        model = Job
        fields = ["kind", "status", "integration"]
