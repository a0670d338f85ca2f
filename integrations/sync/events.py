"""External changes: permissions granted or revoked in the application, outside the portal.

Owns what a run records of them (itemised up to :data:`EXTERNAL_EVENTS_LIMIT`, counted beyond) and,
once the run has committed, their audit events and the alert to the integration's owner and the
admins when the integration asks for it.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from governance import audit, notifications

from ..models import Account, Integration, Permission, Role
from .result import SyncResult

EXTERNAL_EVENTS_LIMIT = 10_000  # per run: beyond this, external changes are summarised, not itemised


def _record_external(result: SyncResult, granted=(), revoked=(), count: int | None = None) -> None:
    """Record permission changes made outside the portal (itemised up to the run's limit).
    ``count``: how many grants ``granted`` stands for, when it is a capped iterator."""
    granted, revoked = list(granted), list(revoked)
    room = EXTERNAL_EVENTS_LIMIT - len(result.external_grants) - len(result.external_revokes)
    result.external_grants += granted[: max(room, 0)]
    room -= len(granted)
    result.external_revokes += revoked[: max(room, 0)]
    result.add("external_grants", len(granted) if count is None else count)
    result.add("external_revokes", len(revoked))


def _notify_external_changes(integration: Integration, result: SyncResult) -> None:
    """Audit permission changes made outside the portal, and alert when the integration asks for it."""
    granted, revoked = result.counts.get("external_grants", 0), result.counts.get("external_revokes", 0)
    if not (granted or revoked):
        return
    pairs = [("permission.external_grant", p) for p in result.external_grants] + [
        ("permission.external_revoke", p) for p in result.external_revokes
    ]
    accounts = dict(Account.objects.filter(pk__in={a for _, (a, _) in pairs}).values_list("id", "identity"))
    roles = {  # as Role.__str__ names them, without loading whole roles
        pk: f"{resource} · {name}"
        for pk, resource, name in Role.objects.filter(pk__in={r for _, (_, r) in pairs}).values_list(
            "pk", "resource__name", "name"
        )
    }
    audit.record_many(
        {
            "action": action,
            "object_type": Permission,
            "object_id": f"{account_id}:{role_id}",
            "object_repr": f"{accounts.get(account_id, account_id)} → {roles.get(role_id, role_id)}",
            "integration_id": integration.pk,
            "details": {"account_id": account_id, "role_id": role_id},
        }
        for action, (account_id, role_id) in pairs
    )
    if not integration.notify_external_permission_changes:
        return
    lines = [
        f"{'+' if action.endswith('grant') else '−'} {accounts.get(a, a)} → {roles.get(r, r)}"
        for action, (a, r) in pairs[:20]
    ]
    more = granted + revoked - len(lines)
    text = (
        f"{granted} permission(s) granted and {revoked} revoked in {integration.name} outside the portal.\n"
        + "\n".join(lines)
        + (f"\n… and {more} more." if more > 0 else "")
    )
    recipients = {u.pk: u for u in [integration.owner, *notifications.admins()] if u is not None}
    notifications.notify(
        subject=f"External permission changes in {integration.name}",
        text=text,
        recipients=recipients.values(),
        webhooks=[integration.notification_webhook_url],
        link=_absolute(reverse("admin:integrations_integration_change", args=[integration.pk])),
    )


def _absolute(path: str) -> str:
    base = getattr(settings, "PORTAL_URL", "").rstrip("/")
    return f"{base}{path}" if base else path
