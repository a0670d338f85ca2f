"""The audit log: filters, table, CSV export of the filtered rows (streamed)."""

from __future__ import annotations

import json

from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone

from governance import audit
from governance.api import stream_csv
from governance.filters import AuditEventFilter
from governance.models import AuditEvent

from ..models import Integration
from ..rights import is_admin, manageable_integrations
from .common import require_manager, style_filter
from .pages import filtered, paginate
from .tables import AuditTable


def _events(request):
    qs = AuditEvent.objects.all()
    if not is_admin(request.user):
        qs = qs.filter(integration_id__in=manageable_integrations(request.user).values("pk"))
    filterset = AuditEventFilter(request.GET or None, queryset=qs, request=request)
    form = filterset.form
    choices = [
        ("", "Any integration"),
        *manageable_integrations(request.user).order_by("name").values_list("pk", "name"),
    ]
    form.fields["integration"].widget = forms.Select(choices=choices)
    form.fields["integration"].label = "Integration"
    form.fields["action"].label = "Action"
    form.fields["correlation_id"].label = "Correlation id"
    for name in ("date_from", "date_to"):
        form.fields[name].widget = forms.DateInput(attrs={"type": "date"})
    for name in ("since", "until"):  # exact instants, for the API and links
        form.fields[name].widget = forms.HiddenInput()
    form.fields["action"].help_text = ""
    style_filter(filterset)
    return filterset, filtered(filterset)


@login_required
def audit_log(request):
    require_manager(request)
    filterset, events = _events(request)
    names = dict(Integration.objects.values_list("pk", "name"))
    table = AuditTable(events, integration_names=names, empty_text="No audit event matches these filters.")
    paginate(request, table, 50)
    return render(
        request,
        "audit/list.html",
        {"table": table, "filter": filterset, "nav": "audit", "query": request.GET.urlencode()},
    )


@login_required
def audit_csv(request):
    require_manager(request)
    _, events = _events(request)
    names = dict(Integration.objects.values_list("pk", "name"))

    def rows():  # for people: the integration's name, the object's model
        for e in events.select_related("object_type").iterator(chunk_size=2000):
            yield [
                e.occurred_at.isoformat(),
                e.actor_repr,
                e.action,
                e.object_type.model if e.object_type_id else "",
                e.object_id,
                e.object_repr,
                names.get(e.integration_id, e.integration_id or ""),
                e.status,
                e.correlation_id,
                json.dumps(e.details, sort_keys=True),
            ]

    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return stream_csv(audit.CSV_COLUMNS, rows(), f"audit-log-{stamp}.csv")
