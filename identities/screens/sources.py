"""Identity sources (admins only): the list of sources and one source's page, where the mapping is a form of
person field → account attribute (the choices are the connector's account schema), with the manager key,
the status values, the precedence and the mass-leaver limit; a held run is shown there with Confirm and
Discard. Every write goes through ``services`` (the API's path too); anybody but an admin gets 403.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from integrations.models import Integration
from integrations.screens.common import add_errors, require_admin, style_form, toast

from .. import services
from ..models import IdentitySource
from ..validators import SOURCE_FIELDS

STATUS_WORDS = ("terminated", "leave")


class SourceForm(forms.Form):
    """The mapping as one select per person field, then the source's settings."""

    position = forms.IntegerField(
        min_value=0, max_value=1_000_000, help_text=IdentitySource.position.field.help_text
    )
    manager_key = forms.ChoiceField(choices=IdentitySource.ManagerKey.choices)
    terminated_values = forms.CharField(
        required=False, help_text="The application's values meaning terminated, comma-separated."
    )
    leave_values = forms.CharField(required=False, help_text="The values meaning on leave, comma-separated.")
    leaver_limit_percent = forms.IntegerField(
        min_value=0, max_value=100, help_text=IdentitySource.leaver_limit_percent.field.help_text
    )
    enabled = forms.BooleanField(required=False)

    def __init__(self, *args, attributes: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "—"), *((a, a) for a in attributes)]
        for field in reversed(SOURCE_FIELDS):
            self.fields = {
                f"map_{field}": forms.ChoiceField(
                    label=field.replace("_", " ").capitalize(), choices=choices, required=False
                ),
                **self.fields,
            }

    @staticmethod
    def initial_for(source: IdentitySource) -> dict:
        initial = {f"map_{f}": a for f, a in source.mapping.items()}
        for word in STATUS_WORDS:
            initial[f"{word}_values"] = ", ".join(source.status_values.get(word, []))
        for name in ("position", "manager_key", "leaver_limit_percent", "enabled"):
            initial[name] = getattr(source, name)
        return initial

    def apply_to(self, source: IdentitySource) -> None:
        data = self.cleaned_data
        source.mapping = {f: data[f"map_{f}"] for f in SOURCE_FIELDS if data.get(f"map_{f}")}
        source.status_values = {
            word: values
            for word in STATUS_WORDS
            if (values := [v.strip() for v in data[f"{word}_values"].split(",") if v.strip()])
        }
        for name in ("position", "manager_key", "leaver_limit_percent", "enabled"):
            setattr(source, name, data[name])


@login_required
def source_list(request):
    require_admin(request)
    sources = list(IdentitySource.objects.select_related("integration"))
    others = Integration.objects.exclude(pk__in=[s.integration_id for s in sources]).order_by("name")
    context = {"sources": sources, "others": others, "nav": "identity-sources", "title": "Identity sources"}
    return render(request, "sources/list.html", context)


@login_required
def source_detail(request, integration_id: int):
    require_admin(request)
    integration = get_object_or_404(Integration, pk=integration_id)
    source = IdentitySource.objects.filter(integration=integration).first()
    is_new = source is None
    if is_new:
        source = IdentitySource(integration=integration)
    attributes = integration.connector.spec.account_schema.attribute_names
    if request.method == "POST":
        form = SourceForm(request.POST, attributes=attributes)
        if form.is_valid():
            form.apply_to(source)
            try:
                services.identity_source_save(actor=request.user, source=source)
            except ValidationError as exc:
                add_errors(form, exc)
            else:
                toast(request, f"Identity source {integration.name} saved.")
                return redirect("identities:identity-source", integration_id=integration.pk)
    else:
        form = SourceForm(initial=SourceForm.initial_for(source), attributes=attributes)
    context = {
        "integration": integration,
        "source": source,
        "is_new": is_new,
        "form": style_form(form),
        "nav": "identity-sources",
        "title": f"Identity source {integration.name}",
    }
    return render(request, "sources/detail.html", context)


def _decide(action: str):
    @login_required
    @require_POST
    def view(request, integration_id: int):
        require_admin(request)
        source = get_object_or_404(
            IdentitySource.objects.select_related("integration"), integration_id=integration_id
        )
        try:
            if action == "apply":
                summary = services.identity_source_apply(actor=request.user, source=source)
                if summary.get("pending"):
                    toast(request, "The run is held: it would terminate too many people.", "warning")
                else:
                    toast(request, "Applied: {created} created, {updated} updated.".format(**summary))
            elif action == "confirm":
                services.identity_source_confirm(actor=request.user, source=source)
                toast(request, "The held run was applied.")
            else:
                services.identity_source_discard(actor=request.user, source=source)
                toast(request, "The held run was discarded; people stay as they are.")
        except ValidationError as exc:
            toast(request, " ".join(exc.messages), "error")
        return redirect("identities:identity-source", integration_id=integration_id)

    return view


source_apply = _decide("apply")
source_confirm = _decide("confirm")
source_discard = _decide("discard")
