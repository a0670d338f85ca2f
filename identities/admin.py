"""The Django admin of people: power edits of a person's own fields (their name, email, manager, department
and title are the user's, edited on the user). Every user already has a person: none is added or deleted
here (deleting the user deletes the person). Identity sources: their mapping and settings, checked like the
screens' (the model's ``clean``); a held run is decided on the screens or the API, not here."""

from django import forms
from django.contrib import admin

from governance.admin import PortalAdmin
from governance.inputs import BoundedJSONDecoder

from .models import IdentitySource, Person
from .services import PERSON_FIELDS


class PersonForm(forms.ModelForm):
    class Meta:
        model = Person
        fields = PERSON_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["attributes"].decoder = BoundedJSONDecoder  # bounded: depth, no NUL


@admin.register(Person)
class PersonAdmin(PortalAdmin):
    form = PersonForm
    list_display = ("user", "employee_id", "display_name", "status", "location", "source", "updated_at")
    list_filter = ("status", "source")
    search_fields = ("user__username", "user__first_name", "user__last_name", "user__email", "employee_id")
    autocomplete_fields = ("source",)
    readonly_fields = ("user", "created_at", "updated_at")
    list_select_related = ("user", "source")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class IdentitySourceForm(forms.ModelForm):
    class Meta:
        model = IdentitySource
        fields = (
            "integration",
            "position",
            "mapping",
            "manager_key",
            "status_values",
            "leaver_limit_percent",
            "enabled",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("mapping", "status_values"):
            self.fields[name].decoder = BoundedJSONDecoder  # bounded: depth, no NUL


@admin.register(IdentitySource)
class IdentitySourceAdmin(PortalAdmin):
    form = IdentitySourceForm
    list_display = ("integration", "position", "enabled", "last_applied_at", "pending_since")
    list_filter = ("enabled",)
    readonly_fields = ("last_applied_at", "last_summary", "pending_since", "pending_summary")
    search_fields = ("integration__name",)
