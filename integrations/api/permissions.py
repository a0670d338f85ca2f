"""Who may call what: the screens' rules (integrations/rights.py), answered as HTTP statuses.

- 401: no valid credentials (DRF, from the authentication classes).
- 403: signed in but without the right: a user who manages nothing calls an inventory
  endpoint, or a non-admin calls an admin-only write.
- 404: an object the caller may not see (the querysets are scoped, so it is simply not found).
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from ..rights import can_delete_integration, is_admin, manages_inventory


class ManagesInventory(BasePermission):
    """Admins, and owners or maintainers of at least one integration or resource."""

    message = "You manage no integration or resource; ask an admin for access."

    def has_permission(self, request, view) -> bool:
        cached = getattr(request, "_manages_inventory", None)
        if cached is None:
            cached = request._manages_inventory = manages_inventory(request.user)
        return cached


class AdminForWrites(BasePermission):
    """Reads as the other permissions allow; these writes only for admins."""

    message = "Only admins may do this."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        admin_actions = getattr(view, "admin_actions", None)
        if admin_actions is not None and getattr(view, "action", None) not in admin_actions:
            return True
        return is_admin(request.user)


class IsAdmin(BasePermission):
    message = "Only admins may do this."

    def has_permission(self, request, view) -> bool:
        return is_admin(request.user)


class CanDeleteIntegration(BasePermission):
    """Deleting an integration: the screens' rule (``rights.can_delete_integration``)."""

    message = "Only admins may delete an integration."

    def has_object_permission(self, request, view, obj) -> bool:
        return getattr(view, "action", None) != "destroy" or can_delete_integration(request.user, obj)
