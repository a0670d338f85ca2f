"""Who may see and change what. The screens and the API both ask here.

- Admins (staff or superusers) manage everything.
- An integration's owner and maintainers (users, or members of maintainer groups) manage
  that integration, its resources and roles.
- A resource's owner and maintainers manage that resource and its roles.
- Everyone else manages nothing (they see only what they may request and their own requests).
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from .models import Account, Integration, Permission, Resource, Role


def is_admin(user) -> bool:
    return bool(user and user.is_authenticated and (user.is_staff or user.is_superuser))


def _maintains(user, prefix: str = "") -> Q:
    """Objects whose maintainers (reached through ``prefix``) include the user or one of their groups."""
    return Q(**{f"{prefix}maintainers__user": user}) | Q(
        **{f"{prefix}maintainers__group__in": user.groups.all()}
    )


def manageable_integrations(user) -> QuerySet[Integration]:
    if is_admin(user):
        return Integration.objects.all()
    if not (user and user.is_authenticated):
        return Integration.objects.none()
    ids = Integration.objects.filter(Q(owner=user) | _maintains(user)).values("pk")
    return Integration.objects.filter(pk__in=ids)


def manageable_resources(user) -> QuerySet[Resource]:
    if is_admin(user):
        return Resource.objects.all()
    if not (user and user.is_authenticated):
        return Resource.objects.none()
    own = Resource.objects.filter(Q(owner=user) | _maintains(user)).values("pk")
    return Resource.objects.filter(Q(integration__in=manageable_integrations(user)) | Q(pk__in=own))


def manageable_roles(user) -> QuerySet[Role]:
    if is_admin(user):
        return Role.objects.all()
    return Role.objects.filter(resource__in=manageable_resources(user))


def manageable_accounts(user) -> QuerySet[Account]:
    if is_admin(user):
        return Account.objects.all()
    return Account.objects.filter(integration__in=manageable_integrations(user))


def manageable_permissions(user) -> QuerySet[Permission]:
    if is_admin(user):
        return Permission.objects.all()
    return Permission.objects.filter(role__in=manageable_roles(user))


def manages_inventory(user) -> bool:
    """Admins, and owners or maintainers of at least one integration or resource: who sees the inventory."""
    if not (user and user.is_authenticated):
        return False
    return is_admin(user) or manageable_integrations(user).exists() or manageable_resources(user).exists()


def can_manage(user, obj) -> bool:
    """Whether ``user`` may see and change ``obj`` (an integration, resource, role, account or permission)."""
    if is_admin(user):
        return True
    querysets = {
        Integration: manageable_integrations,
        Resource: manageable_resources,
        Role: manageable_roles,
        Account: manageable_accounts,
        Permission: manageable_permissions,
    }
    for model, manageable in querysets.items():
        if isinstance(obj, model):
            return manageable(user).filter(pk=obj.pk).exists()
    return False
