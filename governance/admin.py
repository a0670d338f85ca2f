from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .inputs import parse_id
from .models import AuditEvent, Job, User


class _Ids:
    """An autocomplete widget re-showing posted values keeps only those that are ids of its model: Django
    would look the others up and fail with a 500 where the form says "Select a valid choice"."""

    def optgroups(self, name, value, attr=None):
        return super().optgroups(name, [v for v in value if parse_id(v) is not None], attr)


class IdsAutocompleteSelect(_Ids, AutocompleteSelect):
    pass


class IdsAutocompleteSelectMultiple(_Ids, AutocompleteSelectMultiple):
    pass


_SAFE_WIDGETS = {
    AutocompleteSelect: IdsAutocompleteSelect,
    AutocompleteSelectMultiple: IdsAutocompleteSelectMultiple,
}


class PortalAdminMixin:
    """What every admin of the portal shares: autocomplete fields that never 500 on a value that is no id."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return _safe(super().formfield_for_foreignkey(db_field, request, **kwargs))

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        return _safe(super().formfield_for_manytomany(db_field, request, **kwargs))


def _safe(formfield):
    if formfield is not None and type(formfield.widget) in _SAFE_WIDGETS:
        formfield.widget.__class__ = _SAFE_WIDGETS[type(formfield.widget)]
    return formfield


class PortalAdmin(PortalAdminMixin, admin.ModelAdmin):
    pass


class PortalTabularInline(PortalAdminMixin, admin.TabularInline):
    pass


admin.site.site_header = "Access governance"
admin.site.site_title = "Access governance admin"
admin.site.index_title = "Power edits"


@admin.register(User)
class UserAdmin(PortalAdminMixin, BaseUserAdmin):
    list_display = ("username", "email", "first_name", "last_name", "department", "manager", "is_staff")
    list_filter = ("is_staff", "is_superuser", "is_active", "department", "groups")
    search_fields = ("username", "email", "first_name", "last_name")
    autocomplete_fields = ("manager",)
    fieldsets = BaseUserAdmin.fieldsets + (("Organisation", {"fields": ("manager", "department", "title")}),)


class ReadOnlyAdmin(PortalAdmin):
    """Nothing here is added, changed or deleted by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "actor_repr", "action", "object_repr", "integration_id", "status")
    list_filter = ("status", "action", ("occurred_at", admin.DateFieldListFilter))
    search_fields = ("actor_repr", "action", "object_repr", "object_id", "correlation_id")
    date_hierarchy = "occurred_at"
    list_select_related = False
    show_full_result_count = False

    def get_actions(self, request):
        return {}  # no bulk delete of an append-only log


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "status", "phase", "done", "total", "integration_id", "finished_at")
    list_filter = ("kind", "status")
    search_fields = ("id", "error", "task_id")
