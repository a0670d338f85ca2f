"""Just-in-time access, second half: grant through the connector → revoke when it ends.

- **Grant** (:func:`access_request_grant`, run by a task): prerequisites first, through the
  connector (an account is created when the beneficiary has none and the integration allows it).
  A read-only integration, or one that may not change existing accounts, gets a ticket for the
  owner instead; closing it (:func:`access_ticket_close`) records the grant. A failed grant keeps
  the connector's error on the request, alerts the owner and is retried by the expiry pass.
  Requesting again a role a granted request holds **extends** it: the later request takes over.
- **Revoke** (:func:`access_request_revoke`, and :func:`access_requests_expire` from beat): every
  permission written for the request is removed (and an account created for it deleted), unless
  another live request of the beneficiary still needs it. Each step is idempotent: a revoke that
  runs twice, or again after a crash, does no harm.

Every change is audited: the model writes through the audit signals, and the grants, revokes,
failures and tickets as named events (``access_request.granted`` …).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from connectors.sdk import ConnectorError, ObjectNotFound, as_list
from governance import audit
from governance.audit import audit_context
from integrations.catalogue import check_targets, runtime_config, secret_environ
from integrations.durations import expires_at
from integrations.models import Account, Integration, Permission, Role
from integrations.rights import can_manage
from integrations.selectors import effective_settings

from ..models import AccessRequest, AccessTicket, RequestPermission
from .requests import S, _alert_owner, _give, _locked, _queue_grant, _tell, find_account, request_of

log = logging.getLogger(__name__)

__all__ = [
    "access_request_grant",
    "access_request_revoke",
    "access_request_retry",
    "access_requests_expire",
    "access_ticket_close",
]

MAX_GRANT_ATTEMPTS = 6
REMINDERS = (("7d", timedelta(days=7)), ("1d", timedelta(days=1)))


class GrantError(Exception):
    """A grant or revoke that cannot be done as asked (besides connector errors)."""


# -- grant -----------------------------------------------------------------------------------------------------


def _invoke(integration: Integration, command: str, input: dict) -> list:
    config = runtime_config(integration)
    check_targets(integration.connector, config)
    outputs, _ = integration.connector.invoke(command, config, input, environ=secret_environ())
    return outputs


def _group_attribute(integration: Integration) -> str:
    attribute = integration.connector.spec.account_schema.group_attribute
    if not attribute:
        raise GrantError(
            f"The {integration.application} connector has no group attribute to grant roles through."
        )
    return attribute


def _roles_of(request: AccessRequest) -> list[Role]:
    """Prerequisites first, then the requested role."""
    return [*request.prerequisite_roles.order_by("pk"), request.role]


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return None if a is None or b is None else max(a, b)


def _hold(request: AccessRequest, account: Account, role: Role, now: datetime) -> None:
    """Record that the account holds the role for this request; a role already held is extended.

    A prerequisite that another live request holds stays with that request (it is handed over to
    this one when that one ends, see :func:`_heir`). Requesting again the role a granted request
    holds extends it: the later request takes over everything the earlier one granted.
    """
    until = expires_at(now, request.duration)
    live = (
        Permission.objects.select_for_update(of=("self",))
        .filter(account=account, role=role, ended_at__isnull=True)
        .first()
    )
    if live is None:
        permission = Permission.objects.create(
            integration_id=account.integration_id,
            account=account,
            role=role,
            source=Permission.Source.PORTAL,
            granted_at=now,
            expires_at=until,
            last_seen_at=now,
        )
        RequestPermission.objects.create(request=request, permission=permission)
        return
    older = request_of(live)
    if older is None and live.source != Permission.Source.PORTAL:
        return  # held outside the portal, for good: nothing to extend, nothing to revoke later
    if older is not None and older.pk != request.pk and older.status in AccessRequest.LIVE:
        if role.pk != request.role_id:
            return  # a prerequisite of ours that another live request holds: it stays there
    live.expires_at = _latest(live.expires_at, until)
    live.save()
    _give(live, request)
    if (
        older is not None
        and older.pk != request.pk
        and older.status == S.GRANTED
        and older.role_id == request.role_id
    ):
        # The later request takes over what the earlier one granted; the earlier one ends here.
        for p in older.permissions.filter(ended_at__isnull=True):
            p.expires_at = _latest(p.expires_at, until)
            p.save()
            _give(p, request)
        if older.created_account and older.account_id == account.pk:
            request.created_account = True  # the account made for the earlier request goes with this one
            AccessRequest.objects.filter(pk=request.pk).update(created_account=True)
        older.status = S.EXTENDED
        older.ended_at = now
        older.save()
        audit.record("access_request.extended", obj=older, details={"by_request": request.pk})


def _ends_at(request: AccessRequest, now: datetime) -> datetime | None:
    """When a live request's access ends (None: never): a granted one when it says; one not granted
    yet after its duration from now, the earliest its grant can be."""
    return request.expires_at if request.status == S.GRANTED else expires_at(now, request.duration)


def _heir(request: AccessRequest, permission: Permission, now: datetime) -> AccessRequest | None:
    """Another live request of the same beneficiary that needs the permission's role (as its role or a
    prerequisite), the one ending last; None when no live request needs it any more."""
    candidates = (
        AccessRequest.objects.filter(
            status__in=AccessRequest.LIVE,
            beneficiary_id=request.beneficiary_id,
            integration_id=permission.integration_id,
        )
        .filter(Q(role_id=permission.role_id) | Q(prerequisite_roles=permission.role_id))
        .exclude(pk=request.pk)
        .filter(Q(account__isnull=True) | Q(account_id=permission.account_id))
        .distinct()
    )
    # The last to end; never ending beats every date.
    return max(candidates, key=lambda r: (_ends_at(r, now) is None, _ends_at(r, now) or now), default=None)


def _hand_over(request: AccessRequest, live: list[Permission], now: datetime) -> list[Permission]:
    """Give each permission that another live request still needs to that request; returns the rest."""
    rest = []
    for permission in live:
        heir = _heir(request, permission, now)
        if heir is None:
            rest.append(permission)
            continue
        permission.expires_at = _ends_at(heir, now)
        permission.save()
        _give(permission, heir)
        audit.record(
            "access_request.permission_kept",
            obj=request,
            details={"role": permission.role.external_id, "needed_by_request": heir.pk},
        )
    return rest


def _link_for_grant(account: Account, user) -> None:
    """The account a grant used is the beneficiary's: linked to them, as linked by a grant (which a sync
    keeps). A link a person made, a service account and an account linked to someone else stay as they are."""
    if account.service_account or account.user_id not in (None, user.pk):
        return
    if account.link_source == Account.LinkSource.HAND:  # a person decided: theirs, or (no user) nobody's
        return
    if account.user_id == user.pk and account.link_source == Account.LinkSource.GRANT:
        return
    account.user, account.link_source = user, Account.LinkSource.GRANT
    account.save(update_fields=["user", "link_source", "updated_at"])


def _granted(request: AccessRequest, account: Account | None, now: datetime, how: str) -> None:
    if account is not None:
        _link_for_grant(account, request.beneficiary)
    request.account = account
    request.status = S.GRANTED
    request.granted_at = now
    main = request.permissions.filter(role=request.role, ended_at__isnull=True).first()
    request.expires_at = main.expires_at if main else expires_at(now, request.duration)
    request.error = ""
    request.next_attempt_at = None
    request.save()
    audit.record(
        "access_request.granted",
        obj=request,
        details={
            "account": account.identity if account else None,
            "how": how,
            "expires_at": request.expires_at,
        },
    )
    until = f"until {request.expires_at:%Y-%m-%d %H:%M} UTC" if request.expires_at else "with no end"
    _tell(request, "Access granted", f"Granted {until}.")


def _open_ticket(
    request: AccessRequest, kind: str, reason: str, roles: list[Role] | None = None
) -> AccessTicket:
    owner = effective_settings(request.role).owner
    ticket = AccessTicket.objects.filter(request=request, kind=kind, status=AccessTicket.Status.OPEN).first()
    if ticket is None:
        ticket = AccessTicket.objects.create(request=request, kind=kind, assignee=owner, reason=reason)
        audit.record(
            "access_request.ticket_opened",
            obj=request,
            details={"ticket": ticket.pk, "kind": kind, "reason": reason},
        )
        account = request.account or find_account(request.integration, request.beneficiary)
        roles = ", ".join(r.external_id for r in (roles if roles is not None else _roles_of(request)))
        _alert_owner(
            request,
            f"Ticket: {ticket.get_kind_display().lower()} by hand",
            f"{reason}\n{ticket.get_kind_display()} {roles} for account "
            f"{account.identity if account else request.beneficiary.username} in {request.integration.name}, "
            "then close the ticket in the portal.",
        )
    return ticket


def _grant_failed(request: AccessRequest, message: str, now: datetime) -> None:
    request.attempts += 1
    request.status = S.FAILED
    request.error = message
    request.next_attempt_at = (
        now + timedelta(minutes=2 ** min(request.attempts, 8))
        if request.attempts < MAX_GRANT_ATTEMPTS
        else None
    )
    request.save()
    audit.record(
        "access_request.grant_failed",
        obj=request,
        status="error",
        details={"error": message, "attempt": request.attempts},
    )
    retry = "It will be retried." if request.next_attempt_at else "It will not be retried automatically."
    _alert_owner(request, "Granting access failed", f"{message}\n{retry}")
    _tell(request, "Granting access failed", f"{message}\n{retry}")


def access_request_grant(*, request_id: int, now: datetime | None = None) -> AccessRequest:
    """Grant an approved (or failed) request; anything else is left as it is.

    Creating an account is made recoverable: the intent (``created_account`` with no account yet) is
    committed before the connector is asked to create it, so when the process dies after the
    connector made the account but before the portal recorded it, the next attempt reads the
    account from the application, records it as created for this request, and finishes the grant.
    """
    now = now or timezone.now()
    with audit_context(actor=None):
        with transaction.atomic():
            request = _locked(request_id)
            if request.status not in (S.APPROVED, S.FAILED):
                return request
            integration = request.integration
            if integration.read_only:
                _open_ticket(request, AccessTicket.Kind.GRANT, f"{integration.name} is read-only.")
                request.next_attempt_at = None
                request.save()
                return request
            creating = request.created_account and request.account_id is None
            account = None if creating else find_account(integration, request.beneficiary)
            if account is not None and not integration.allow_changing_account_permissions:
                return _ticket_for_existing_account(request, account)
            if account is None and not creating:
                try:
                    if not integration.allow_creating_accounts:
                        raise GrantError(
                            f"{request.beneficiary} has no account in {integration.name}, "
                            "and the integration does not allow creating accounts."
                        )
                    found = _read_account(integration, request.beneficiary.username)
                except (ConnectorError, GrantError) as exc:
                    _grant_failed(request, str(exc), now)
                    return request
                if found is not None:
                    # The application has the account, the portal did not know it yet: use it, not ours.
                    account = _record_account(request, found, now)
                    if not integration.allow_changing_account_permissions:
                        return _ticket_for_existing_account(request, account)
                else:
                    request.created_account = True  # the intent, committed before the connector creates it
                    AccessRequest.objects.filter(pk=request.pk).update(created_account=True)
        with transaction.atomic():
            request = _locked(request_id)
            if request.status not in (S.APPROVED, S.FAILED):
                return request
            try:
                roles = _roles_of(request)
                foreign = [r for r in roles if r.integration_id != integration.pk]
                if foreign:  # never through this integration's connector, past the other's owner and workflow
                    raise GrantError(
                        f"{foreign[0]} belongs to another integration: it is not granted with this request."
                    )
                if request.created_account and request.account_id is None:
                    # The intent was there before this attempt: an earlier one may have made the account.
                    account = _create_account(request, roles, now, recovering=creating)
                else:
                    account = request.account or account
                held = set(
                    Permission.objects.filter(
                        account=account, role__in=roles, ended_at__isnull=True
                    ).values_list("role_id", flat=True)
                )
                attribute = _group_attribute(integration)
                for role in roles:  # prerequisites first; each one recorded as soon as it is granted
                    if role.pk not in held:
                        _invoke(
                            integration,
                            "std:account:update",
                            {
                                "identity": account.identity,
                                "changes": [{"op": "Add", "attribute": attribute, "value": role.external_id}],
                            },
                        )
                    _hold(request, account, role, now)
                _granted(request, account, now, "account created" if request.created_account else "connector")
            except (ConnectorError, GrantError) as exc:
                _grant_failed(request, str(exc), now)
    return request


def _ticket_for_existing_account(request: AccessRequest, account: Account) -> AccessRequest:
    _open_ticket(
        request,
        AccessTicket.Kind.GRANT,
        f"{request.integration.name} does not allow changing the permissions of existing accounts.",
    )
    request.account, request.next_attempt_at = account, None
    request.save()
    return request


def _read_account(integration: Integration, identity: str) -> dict | None:
    """The application's account named ``identity``, or None (also when the connector cannot read one)."""
    if not integration.connector.spec.supports("std:account:read"):
        return None
    try:
        outputs = _invoke(integration, "std:account:read", {"identity": identity})
    except ObjectNotFound:
        return None
    return outputs[0] if outputs else None


def _record_account(request: AccessRequest, out: dict, now: datetime) -> Account:
    """Record (or refresh) the account the connector returned, linked to the beneficiary, on the request."""
    integration, user = request.integration, request.beneficiary
    key = out.get("key") or {}
    external_id = (
        (key.get("simple") or {}).get("id") or (key.get("compound") or {}).get("uniqueId") or out["identity"]
    )
    account, _ = Account.objects.update_or_create(
        integration=integration,
        external_id=external_id,
        defaults={
            "identity": out.get("identity") or user.username,
            "email": user.email,
            "user": user,
            "link_source": Account.LinkSource.GRANT,
            "attributes": out.get("attributes") or {},
            "removed_at": None,
            "last_seen_at": now,
        },
    )
    request.account = account
    AccessRequest.objects.filter(pk=request.pk).update(account=account)
    return account


def _create_account(request: AccessRequest, roles: list[Role], now: datetime, *, recovering: bool) -> Account:
    """Create the beneficiary's account with the roles, or, ``recovering`` after an attempt that set the
    intent, find the one it may have created (this attempt's own first look found none)."""
    integration, user = request.integration, request.beneficiary
    attribute = _group_attribute(integration)
    out = _read_account(integration, user.username) if recovering else None
    recovered = out is not None
    if out is None:
        attributes = {attribute: [r.external_id for r in roles]}
        outputs = _invoke(
            integration, "std:account:create", {"identity": user.username, "attributes": attributes}
        )
        out = outputs[0] if outputs else {"identity": user.username, "key": {"simple": {"id": user.username}}}
        # What the create call granted is held already; the grant loop then only records it.
    account = _record_account(request, out, now)
    held = {str(v) for v in as_list((out.get("attributes") or {}).get(attribute))}
    for role in roles:
        if role.external_id in held:
            _hold(request, account, role, now)
    audit.record(
        "access_request.account_created",
        obj=request,
        details={"account": account.identity, "recovered": recovered},
    )
    return account


# -- revoke ----------------------------------------------------------------------------------------------------


def _final_status(request: AccessRequest) -> str:
    return S.REVOKED if request.revoked_by_id else S.EXPIRED


def _ended(request: AccessRequest, now: datetime) -> None:
    if request.status != S.FAILED:
        request.error = ""  # a grant given up on keeps its last error on the request
    request.status = _final_status(request)
    request.ended_at = now
    request.save()
    audit.record("access_request.revoked", obj=request, details={"status": request.status})
    word = "revoked" if request.status == S.REVOKED else "expired"
    _tell(request, f"Access {word}", f"The access has been removed ({word}).")


def _revoke(request_id: int, now: datetime) -> AccessRequest:
    """Remove what the request granted; idempotent. Connector errors are recorded, not raised.

    What another live request of the beneficiary still needs (its role, or a prerequisite shared by
    both) is handed over to that request instead of revoked; an account created for this request is
    deleted only when no other live request uses it (else the one that does deletes it in the end).
    """
    with transaction.atomic():
        request = _locked(request_id)
        if request.status not in AccessRequest.LIVE:
            return request
        integration = request.integration
        live = list(request.permissions.filter(ended_at__isnull=True).select_related("account", "role"))
        if request.status != S.GRANTED and not live:
            AccessTicket.objects.filter(request=request, status=AccessTicket.Status.OPEN).update(
                status=AccessTicket.Status.CANCELLED, closed_at=now
            )
            if request.created_account and request.account_id is None:
                try:  # an account a crashed attempt created and nobody recorded: it goes too
                    if _read_account(integration, request.beneficiary.username) is not None:
                        _invoke(integration, "std:account:delete", {"identity": request.beneficiary.username})
                except (ConnectorError, GrantError) as exc:
                    return _revoke_failed(request, exc)
            _ended(request, now)
            return request
        manual = integration.read_only or (
            not integration.allow_changing_account_permissions and not request.created_account
        )
        if manual and live:
            live = _hand_over(request, live, now)
            if not live:
                _ended(request, now)
                return request
            _open_ticket(
                request,
                AccessTicket.Kind.REVOKE,
                f"The access ended; {integration.name} is changed by hand.",
                roles=[p.role for p in live],
            )
            return request
        try:
            sharers = (
                AccessRequest.objects.filter(status__in=AccessRequest.LIVE, account_id=request.account_id)
                .exclude(pk=request.pk)
                .order_by("-expires_at")
                if request.created_account and request.account_id
                else AccessRequest.objects.none()
            )
            if request.created_account and request.account_id and not sharers.exists():
                try:
                    _invoke(integration, "std:account:delete", {"identity": request.account.identity})
                except ObjectNotFound:
                    pass  # already gone: a repeated revoke
                Permission.objects.filter(account=request.account, ended_at__isnull=True).update(ended_at=now)
                Account.objects.filter(pk=request.account_id).update(removed_at=now)
                audit.record(
                    "access_request.account_deleted",
                    obj=request,
                    details={"account": request.account.identity},
                )
            else:
                attribute = _group_attribute(integration) if live else ""
                main_first = sorted(live, key=lambda p: p.role_id != request.role_id)
                for permission in _hand_over(request, main_first, now):
                    _invoke(
                        integration,
                        "std:account:update",
                        {
                            "identity": permission.account.identity,
                            "changes": [
                                {"op": "Remove", "attribute": attribute, "value": permission.role.external_id}
                            ],
                        },
                    )
                    permission.ended_at = now
                    permission.save()
                heir = sharers.first()
                if heir is not None:  # the account made for this request now ends with that one
                    AccessRequest.objects.filter(pk=heir.pk).update(created_account=True)
                    audit.record(
                        "access_request.permission_kept",
                        obj=request,
                        details={"account": request.account.identity, "needed_by_request": heir.pk},
                    )
            _ended(request, now)
        except (ConnectorError, GrantError) as exc:
            _revoke_failed(request, exc)
    return request


def _revoke_failed(request: AccessRequest, exc: Exception) -> AccessRequest:
    request.error = f"Revoking failed: {exc}"
    request.save()
    audit.record("access_request.revoke_failed", obj=request, status="error", details={"error": str(exc)})
    _alert_owner(request, "Revoking access failed", f"{exc}\nIt will be retried.")
    return request


def access_request_revoke(*, actor, request: AccessRequest, now: datetime | None = None) -> AccessRequest:
    """End access early: the beneficiary giving it up, the requester, or a manager of the integration."""
    now = now or timezone.now()
    with audit_context(actor=actor):
        with transaction.atomic():
            request = _locked(request)
            allowed = actor.pk in (request.requester_id, request.beneficiary_id) or can_manage(
                actor, request.integration
            )
            if not allowed:
                raise PermissionDenied(
                    "Only the beneficiary, the requester or a manager of the integration can end this access."
                )
            if request.status not in AccessRequest.LIVE:
                raise ValidationError(
                    f"Request #{request.pk} is {request.get_status_display().lower()}: there is no access to end."
                )
            request.revoked_by = actor
            if request.expires_at is None or request.expires_at > now:
                request.expires_at = now  # the expiry pass retries it if the connector fails now
            request.save()
        request = _revoke(request.pk, now)
    if request.status in AccessRequest.LIVE and request.error:
        raise ValidationError(f"{request.error} It will be retried.")
    return request


def access_request_retry(*, actor, request: AccessRequest) -> AccessRequest:
    """A manager of the integration retries a failed grant now (also one given up on)."""
    with audit_context(actor=actor), transaction.atomic():
        request = _locked(request)
        if not can_manage(actor, request.integration):
            raise PermissionDenied("Only a manager of the integration can retry granting this access.")
        if request.status != S.FAILED:
            raise ValidationError(
                f"Request #{request.pk} is {request.get_status_display().lower()}: only a failed grant is retried."
            )
        request.attempts = 0
        request.next_attempt_at = timezone.now() + timedelta(minutes=5)  # the expiry pass's fallback
        request.save()
        audit.record("access_request.retried", obj=request, details={"error": request.error})
        _queue_grant(request)
    return request


# -- tickets ---------------------------------------------------------------------------------------------------


def access_ticket_close(
    *, actor, ticket: AccessTicket, note: str = "", now: datetime | None = None
) -> AccessTicket:
    """The assignee says the work is done: the grant or revoke is recorded."""
    now = now or timezone.now()
    with audit_context(actor=actor), transaction.atomic():
        ticket = AccessTicket.objects.select_for_update().get(pk=ticket.pk)
        request = _locked(ticket.request)
        if not (actor.pk == ticket.assignee_id or can_manage(actor, request.integration)):
            raise PermissionDenied("Only the ticket's assignee or a manager of the integration can close it.")
        if actor.pk == request.beneficiary_id:  # separation of duties: nobody records their own access
            raise PermissionDenied(
                "Nobody closes a ticket about their own access: another manager of the integration closes it."
            )
        if ticket.status != AccessTicket.Status.OPEN:
            raise ValidationError(f"Ticket #{ticket.pk} is already {ticket.get_status_display().lower()}.")
        ticket.status, ticket.closed_at, ticket.closed_by, ticket.note = (
            AccessTicket.Status.DONE,
            now,
            actor,
            note,
        )
        ticket.save()
        audit.record(
            "access_request.ticket_closed",
            obj=request,
            details={"ticket": ticket.pk, "kind": ticket.kind, "note": note},
        )
        if ticket.kind == AccessTicket.Kind.GRANT and request.status in (S.APPROVED, S.FAILED):
            integration, user = request.integration, request.beneficiary
            account = request.account or find_account(integration, user)
            if account is None:
                # Created by hand: recorded now; the next sync reconciles it with the application.
                account, _ = Account.objects.get_or_create(
                    integration=integration,
                    external_id=user.username,
                    defaults={
                        "identity": user.username,
                        "email": user.email,
                        "user": user,
                        "link_source": Account.LinkSource.GRANT,
                    },
                )
            for role in _roles_of(request):
                _hold(request, account, role, now)
            _granted(request, account, now, "ticket")
        elif ticket.kind == AccessTicket.Kind.REVOKE and request.status in AccessRequest.LIVE:
            live = request.permissions.filter(ended_at__isnull=True).select_related("role")
            for permission in _hand_over(request, list(live), now):
                permission.ended_at = now
                permission.save()
            _ended(request, now)
    return ticket


# -- the expiry pass -------------------------------------------------------------------------------------------


def access_requests_expire(*, now: datetime | None = None) -> dict[str, int]:
    """Beat, once a minute: revoke what has expired, expire stale requests, retry grants, send reminders."""
    now = now or timezone.now()
    counts = {"revoked": 0, "stale": 0, "retried": 0, "abandoned": 0, "reminded": 0}
    with audit_context(actor=None):
        due = AccessRequest.objects.filter(status=S.GRANTED, expires_at__lte=now).exclude(
            tickets__status=AccessTicket.Status.OPEN, tickets__kind=AccessTicket.Kind.REVOKE
        )
        for pk in list(due.values_list("pk", flat=True)):
            counts["revoked"] += _revoke(pk, now).status not in AccessRequest.LIVE

        max_age = timedelta(hours=getattr(settings, "ACCESS_REQUEST_PENDING_MAX_AGE_HOURS", 14 * 24))
        for request in AccessRequest.objects.filter(status=S.PENDING, created_at__lte=now - max_age):
            with transaction.atomic():
                request = _locked(request)
                if request.status != S.PENDING:
                    continue
                request.status, request.ended_at = S.EXPIRED, now
                request.save()
                request.pending_approvers.clear()
                audit.record(
                    "access_request.expired_pending",
                    obj=request,
                    details={"age_hours": max_age.total_seconds() / 3600},
                )
                _tell(
                    request,
                    "Request expired",
                    "Nobody decided it in time; file a new request if still needed.",
                )
                counts["stale"] += 1

        retry = (
            AccessRequest.objects.filter(status__in=[S.APPROVED, S.FAILED], next_attempt_at__lte=now)
            .exclude(tickets__status=AccessTicket.Status.OPEN)
            .values_list("pk", flat=True)
        )
        for pk in list(retry):
            access_request_grant(request_id=pk, now=now)
            counts["retried"] += 1

        # A grant given up on (no attempt left) must not leave behind what it granted before failing.
        abandoned = (
            AccessRequest.objects.filter(
                status=S.FAILED, next_attempt_at__isnull=True, permissions__ended_at=None
            )
            .exclude(tickets__status=AccessTicket.Status.OPEN)
            .values_list("pk", flat=True)
            .distinct()
        )
        for pk in list(abandoned):
            counts["abandoned"] += _revoke(pk, now).status not in AccessRequest.LIVE

        for key, window in REMINDERS:
            soon = AccessRequest.objects.filter(
                status=S.GRANTED, expires_at__gt=now, expires_at__lte=now + window
            )
            for request in soon.select_related("role__resource", "requester", "beneficiary"):
                if key in request.reminders_sent:
                    continue
                if request.granted_at and request.expires_at - request.granted_at <= window:
                    continue  # access shorter than the reminder window: no reminder right after the grant
                with transaction.atomic():
                    request.reminders_sent = [*request.reminders_sent, key]
                    AccessRequest.objects.filter(pk=request.pk).update(reminders_sent=request.reminders_sent)
                    _tell(
                        request,
                        "Access expires soon",
                        f"The access ends on {request.expires_at:%Y-%m-%d %H:%M} UTC; request it again to extend it.",
                    )
                    counts["reminded"] += 1
    return counts
