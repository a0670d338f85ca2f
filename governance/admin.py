from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import AuditEvent, Job, User

admin.site.site_header = "Access governance"
admin.site.site_title = "Access governance admin"
admin.site.index_title = "Power edits"


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "email", "first_name", "last_name", "department", "manager", "is_staff")
    list_filter = ("is_staff", "is_superuser", "is_active", "department", "groups")
    search_fields = ("username", "email", "first_name", "last_name")
    autocomplete_fields = ("manager",)
    fieldsets = BaseUserAdmin.fieldsets + (("Organisation", {"fields": ("manager", "department", "title")}),)


class ReadOnlyAdmin(admin.ModelAdmin):
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
