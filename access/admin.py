"""The Django admin of just-in-time access: read-only, requests change through their services."""

from django.contrib import admin

from governance.admin import PortalAdmin, PortalTabularInline

from .models import AccessDecision, AccessRequest, AccessTicket


class DecisionInline(PortalTabularInline):
    model = AccessDecision
    extra = 0
    can_delete = False
    readonly_fields = ("step", "approver", "approved", "automatic", "comment", "decided_at")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(AccessRequest)
class AccessRequestAdmin(PortalAdmin):
    """Read-only: requests change through their services (request, approve, grant, revoke)."""

    list_display = (
        "id",
        "role",
        "beneficiary",
        "requester",
        "duration",
        "status",
        "created_at",
        "expires_at",
    )
    list_filter = ("status", "integration")
    search_fields = ("beneficiary__username", "requester__username", "role__name", "role__resource__name")
    list_select_related = ("role__resource", "beneficiary", "requester")
    inlines = (DecisionInline,)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AccessTicket)
class AccessTicketAdmin(PortalAdmin):
    list_display = ("id", "kind", "status", "request", "assignee", "opened_at", "closed_at")
    list_filter = ("status", "kind")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
