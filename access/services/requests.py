"""Just-in-time access, first half: request → decide. (Grant, revoke, tickets and expiry: ``grants.py``.)

- **Request** (:func:`access_request_create`): the role must be requestable and the duration one of
  its allowed durations (both from ``effective_settings``). The effective workflow's first matching
  rule is snapshotted with the users who may approve each step; prerequisites the beneficiary lacks
  are added to the request.
- **Decide** (:func:`access_request_approve`, :func:`access_request_deny`): steps advance in order,
  ``any`` or ``all`` of a step's approvers; automatic steps approve themselves; a denial ends the
  request; nobody approves a request they filed or benefit from. The last approval queues the grant
  (the task ``access.grant_access``, by name).
- **Cancel** (:func:`access_request_cancel`): the requester, the beneficiary or an admin withdraws a
  pending request.

Every change is audited: the model writes through the audit signals, the rest as named events.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from governance import notifications, queue
from governance.audit import audit_context
from integrations.durations import Duration
from integrations.models import Account, Approver, Integration, Permission, PrerequisitePermission, Role
from integrations.rights import is_admin, self_interested
from integrations.selectors import effective_settings

from ..models import AccessDecision, AccessRequest, RequestPermission

log = logging.getLogger(__name__)
User = get_user_model()
S = AccessRequest.Status

__all__ = [
    "access_request_create",
    "access_request_approve",
    "access_request_deny",
    "access_request_cancel",
    "find_account",
    "request_of",
    "missing_prerequisites",
    "step_users",
]

# -- reads ----------------------------------------------------------------------------------------------------


def find_account(integration: Integration, user) -> Account | None:
    """The user's account in an integration: linked to the user, else one with the user's email that nobody
    holds yet (not linked to anyone, no service account, not declared nobody's by hand)."""
    accounts = Account.objects.filter(integration=integration, removed_at__isnull=True)
    account = accounts.filter(user=user).order_by("pk").first()
    if account is None and user.email:
        account = (
            accounts.filter(
                email__iexact=user.email,
                user=None,
                service_account=False,
                link_source__in=Account.SYNC_MANAGED,
            )
            .order_by("pk")
            .first()
        )
    return account


def request_of(permission: Permission) -> AccessRequest | None:
    """The access request a permission was written for, if any."""
    link = RequestPermission.objects.select_related("request").filter(permission=permission).first()
    return link.request if link else None


def _give(permission: Permission, request: AccessRequest) -> None:
    """The permission is now held for ``request`` (written for it, or taken over from another)."""
    RequestPermission.objects.update_or_create(permission=permission, defaults={"request": request})


def _prerequisites_of(role: Role):
    return PrerequisitePermission.objects.filter(
        Q(role=role) | Q(resource_id=role.resource_id) | Q(integration_id=role.integration_id)
    ).prefetch_related("alternatives")


def _held_role_ids(user, integration_ids) -> set[int]:
    """Roles the user holds now for good, on any of their accounts in these integrations.

    A role held only for another live request ends with it, so it does not count: a request that
    needs it as a prerequisite lists it too, and keeps it when the other request ends.
    """
    ids: set[int] = set()
    for integration in Integration.objects.filter(pk__in=set(integration_ids)):
        account = find_account(integration, user)
        if account is not None:
            ids |= set(
                Permission.objects.filter(account=account, ended_at__isnull=True)
                .exclude(access_requests__status__in=AccessRequest.LIVE)
                .values_list("role_id", flat=True)
            )
    return ids


def missing_prerequisites(role: Role, beneficiary) -> list[Role]:
    """For each prerequisite of the role the beneficiary satisfies with none of its alternatives, its first one."""
    prerequisites = list(_prerequisites_of(role))
    if not prerequisites:
        return []
    alternatives = {p.pk: sorted(p.alternatives.all(), key=lambda r: r.pk) for p in prerequisites}
    held = _held_role_ids(beneficiary, {r.integration_id for alts in alternatives.values() for r in alts})
    missing: list[Role] = []
    for p in prerequisites:
        alts = alternatives[p.pk]
        if (
            alts
            and not any(r.pk in held for r in alts)
            and all(r.pk != m.pk for m in missing for r in alts[:1])
        ):
            missing.append(alts[0])
    return missing


def _entry_users(approver: Approver, role: Role, requester) -> tuple[bool, list[int], str]:
    """(automatic, user ids, label) of one approver entry for a request."""
    kind = approver.kind
    if kind == Approver.Kind.AUTOMATIC:
        return True, [], "Automatic"
    if kind == Approver.Kind.USER:
        return False, [approver.user_id], str(approver.user)
    if kind == Approver.Kind.GROUP:
        users = list(approver.group.user_set.filter(is_active=True).values_list("pk", flat=True))
        return False, users, f"Group {approver.group.name}"
    eff = effective_settings(role)
    if kind == Approver.Kind.OWNER:
        return False, [eff.owner.pk] if eff.owner else [], f"Owner ({eff.owner or 'none'})"
    if kind == Approver.Kind.MAINTAINERS:
        users: set[int] = set()
        for m in eff.maintainers:
            if m.user_id:
                users.add(m.user_id)
            else:
                users |= set(m.group.user_set.filter(is_active=True).values_list("pk", flat=True))
        return False, sorted(users), "Maintainers"
    manager = requester.manager
    return False, [manager.pk] if manager else [], f"Manager ({manager or 'none'})"


def _snapshot(rule, role: Role, requester, beneficiary, interested: str) -> list[dict]:
    """The rule's steps with who may approve each entry; nobody approves a request for themselves.

    Separation of duties: when the beneficiary owns or maintains the role (its resource or
    integration) or changed its approval workflow lately (``interested``: see :func:`_interest`), an
    automatic approval becomes the integration owner's approval (admins' when the owner is the beneficiary
    or the requester), so a person other than the beneficiary always approves.
    """
    me = {requester.pk, beneficiary.pk}
    admins = None
    steps = []
    for step in rule.steps.order_by("position").prefetch_related("approvers__user", "approvers__group"):
        entries = []
        for approver in step.approvers.all():
            automatic, users, label = _entry_users(approver, role, requester)
            if automatic and interested:
                owner = role.integration.owner
                automatic, users = False, [owner.pk] if owner else []
                label = f"Integration owner ({owner or 'none'}), not automatic: {beneficiary} {interested}"
            users = [u for u in dict.fromkeys(users) if u not in me]
            if not automatic and not users:
                # Nobody left to approve this entry (no owner, or only the requester): admins decide.
                if admins is None:
                    admins = list(
                        User.objects.filter(is_active=True, is_superuser=True)
                        .exclude(pk__in=me)
                        .values_list("pk", flat=True)
                    )
                users, label = list(admins), f"{label}: no one else may approve, so admins do"
            entries.append({"kind": approver.kind, "label": label, "automatic": automatic, "users": users})
        steps.append({"position": step.position, "mode": step.mode, "approvers": entries})
    return steps


def _interest(beneficiary, role: Role, prerequisites) -> str:
    """Why the beneficiary has a stake in what they request (``integrations.rights.self_interested``), or "": the
    prerequisites are granted with the role, so owning or maintaining one of them counts too."""
    return next(filter(None, (self_interested(beneficiary, r) for r in (role, *prerequisites))), "")


def _rule_for(workflow, duration: str, groups: set[int], what: str = "this request"):
    """The first rule of ``workflow`` matching the duration and the requester's groups."""
    for rule in workflow.rules.order_by("position").prefetch_related("requester_groups"):
        if rule.matches(duration, groups):
            return rule
    raise ValidationError(
        {"duration": f"No rule of the workflow {workflow.name} accepts {what}; try a shorter duration."}
    )


def _prerequisite_steps(
    prerequisites, workflow, duration, groups, requester, beneficiary, steps, interested: str
) -> list[dict]:
    """The steps of the prerequisites' own workflows, after the role's: a prerequisite is granted with the
    role, so a role under a stricter workflow cannot be had through a laxer role that requires it (which its
    maintainers could set up). Each other workflow adds its matching rule's steps once."""
    added: list[dict] = []
    seen = {workflow.pk}
    position = max((s["position"] for s in steps), default=0)
    for prerequisite in prerequisites:
        other = effective_settings(prerequisite).workflow
        if other is None:
            raise ValidationError(
                {
                    "role": f"The prerequisite {prerequisite} has no approval workflow; ask its owner to set one."
                }
            )
        if other.pk in seen:
            continue
        seen.add(other.pk)
        rule = _rule_for(other, duration, groups, f"the prerequisite {prerequisite}")
        for step in _snapshot(rule, prerequisite, requester, beneficiary, interested):
            position += 1
            for entry in step["approvers"]:
                entry["label"] = f"{entry['label']} (for the prerequisite {prerequisite})"
            added.append({**step, "position": position})
    return added


def step_users(step: dict) -> set[int]:
    return {u for e in step["approvers"] for u in e["users"]}


def _step_satisfied(step: dict, approved_by: set[int]) -> bool:
    done = [e["automatic"] or bool(set(e["users"]) & approved_by) for e in step["approvers"]]
    return any(done) if step["mode"] == "any" else all(done)


# -- notifications --------------------------------------------------------------------------------------------


def _link(request: AccessRequest) -> str:
    base = getattr(settings, "PORTAL_URL", "").rstrip("/")
    return base + reverse("access:request-detail", args=[request.pk])


def _tell(request: AccessRequest, subject: str, text: str, extra=()) -> None:
    people = {request.requester, request.beneficiary, *extra}

    def send():
        notifications.notify(
            subject=f"[Access #{request.pk}] {subject}",
            text=f"{request.role} for {request.beneficiary} ({request.duration_label}).\n{text}",
            recipients=[p for p in people if p is not None],
            link=_link(request),
        )

    transaction.on_commit(send)


def _alert_owner(request: AccessRequest, subject: str, text: str) -> None:
    owner = effective_settings(request.role).owner
    integration = request.integration

    def send():
        notifications.notify(
            subject=f"[Access #{request.pk}] {subject}",
            text=f"{request.role} for {request.beneficiary}.\n{text}",
            recipients=[owner] if owner else list(notifications.admins()),
            webhooks=[integration.notification_webhook_url],
            link=_link(request),
        )

    transaction.on_commit(send)


# -- request and decide ---------------------------------------------------------------------------------------


def _locked(request: AccessRequest | int) -> AccessRequest:
    """The request, locked; its integration held against deletion, since granting writes accounts and
    permissions into it that the database does not check (see ``IntegrationManager.hold``)."""
    request = (
        AccessRequest.objects.select_for_update(of=("self",))
        .select_related("role__resource", "integration", "beneficiary", "account")
        .get(pk=getattr(request, "pk", request))
    )
    Integration.objects.hold(request.integration_id)
    return request


def access_request_create(
    *, actor, role: Role, duration: str, justification: str, beneficiary=None
) -> AccessRequest:
    """File a request for ``role`` (for ``beneficiary``, by default the actor)."""
    beneficiary = beneficiary or actor
    role = Role.objects.select_related("resource__integration").get(pk=role.pk)
    eff = effective_settings(role)
    if not eff.requestable:
        raise ValidationError({"role": f"{role} cannot be requested: {eff.requestable_reason}."})
    if duration not in eff.allowed_durations:
        allowed = ", ".join(Duration(d).label for d in eff.allowed_durations) or "none"
        raise ValidationError(
            {"duration": f"{duration!r} is not an allowed duration of {role}; allowed: {allowed}."}
        )
    if not (justification or "").strip():
        raise ValidationError({"justification": "Say why the access is needed."})
    if not beneficiary.is_active:
        raise ValidationError({"beneficiary": f"{beneficiary} is not an active user."})
    integration = role.integration
    if AccessRequest.objects.filter(beneficiary=beneficiary, role=role, status=S.PENDING).exists():
        raise ValidationError(
            {"role": f"{beneficiary} already has a request for {role} waiting for approval."}
        )
    if (
        not integration.read_only
        and not integration.allow_creating_accounts
        and find_account(integration, beneficiary) is None
    ):
        raise ValidationError(
            {
                "beneficiary": f"{beneficiary} has no account in {integration.name}, "
                "and the integration does not allow creating accounts."
            }
        )
    workflow = eff.workflow
    if workflow is None:
        raise ValidationError({"role": f"{role} has no approval workflow; ask its owner to set one."})
    groups = set(actor.groups.values_list("pk", flat=True))
    rule = _rule_for(workflow, duration, groups)
    prerequisites = missing_prerequisites(role, beneficiary)
    foreign = [r for r in prerequisites if r.integration_id != role.integration_id]
    if foreign:
        raise ValidationError(
            {
                "role": f"{role} requires {foreign[0]}, a role of another integration; request that role "
                "on its own first, or ask an admin to fix the prerequisite."
            }
        )
    interested = _interest(beneficiary, role, prerequisites)
    steps = _snapshot(rule, role, actor, beneficiary, interested)
    steps += _prerequisite_steps(
        prerequisites, workflow, duration, groups, actor, beneficiary, steps, interested
    )
    with audit_context(actor=actor), transaction.atomic():
        request = AccessRequest.objects.create(
            requester=actor,
            beneficiary=beneficiary,
            integration=integration,
            role=role,
            duration=duration,
            justification=justification.strip(),
            workflow=workflow,
            rule_position=rule.position,
            steps=steps,
        )
        if prerequisites:
            request.prerequisite_roles.set(prerequisites)
        _tell(request, "Access requested", f"Requested by {actor}: {request.justification}")
        _advance(request)
    return request


def _advance(request: AccessRequest) -> None:
    """Move past satisfied steps; wait on the next one, or approve the request after the last."""
    while request.current_step < len(request.steps):
        step = request.steps[request.current_step]
        approved_by = set(
            request.decisions.filter(
                step=request.current_step, approved=True, approver__isnull=False
            ).values_list("approver_id", flat=True)
        )
        if not _step_satisfied(step, approved_by):
            decided = set(
                request.decisions.filter(step=request.current_step).values_list("approver_id", flat=True)
            )
            waiting = step_users(step) - decided
            request.pending_approvers.set(waiting)
            users = list(User.objects.filter(pk__in=waiting))
            transaction.on_commit(
                lambda users=users: notifications.notify(
                    subject=f"[Access #{request.pk}] Your approval is needed",
                    text=f"{request.requester} requests {request.role} for {request.beneficiary} "
                    f"({request.duration_label}): {request.justification}",
                    recipients=users,
                    link=_link(request),
                )
            )
            return
        if not approved_by and any(e["automatic"] for e in step["approvers"]):
            AccessDecision.objects.create(
                request=request, step=request.current_step, approved=True, automatic=True
            )
        request.current_step += 1
        AccessRequest.objects.filter(pk=request.pk).update(current_step=request.current_step)
    request.pending_approvers.clear()
    request.status = S.APPROVED
    request.decided_at = timezone.now()
    request.next_attempt_at = request.decided_at + timedelta(minutes=5)
    request.save()
    _tell(request, "Access approved", "Every step approved; the access is being granted.")
    _queue_grant(request)


def _queue_grant(request: AccessRequest) -> None:
    # The broker down: the expiry pass retries the grant at next_attempt_at.
    queue.send_on_commit("access.grant_access", request.pk, queue=request.integration.queue)


def _decide(*, actor, request: AccessRequest, approve: bool, comment: str) -> AccessRequest:
    with audit_context(actor=actor), transaction.atomic():
        request = _locked(request)
        verb = "approved" if approve else "denied"
        if request.status != S.PENDING:
            raise ValidationError(
                f"Request #{request.pk} is {request.get_status_display().lower()}: it can no longer be {verb}."
            )
        if actor.pk in (request.requester_id, request.beneficiary_id):
            raise PermissionDenied("You cannot approve or deny a request you filed or that gives you access.")
        step = request.steps[request.current_step]
        if actor.pk not in step_users(step):
            raise PermissionDenied(
                f"You are not an approver of step {request.current_step + 1} of request #{request.pk}."
            )
        if request.decisions.filter(step=request.current_step, approver=actor).exists():
            raise ValidationError(
                f"You already decided step {request.current_step + 1} of request #{request.pk}."
            )
        AccessDecision.objects.create(
            request=request,
            step=request.current_step,
            approver=actor,
            approved=approve,
            comment=comment or "",
        )
        if approve:
            _advance(request)
        else:
            request.status = S.DENIED
            request.decided_at = request.ended_at = timezone.now()
            request.save()
            request.pending_approvers.clear()
            _tell(request, "Access denied", f"Denied by {actor}" + (f": {comment}" if comment else "."))
    return request


def access_request_approve(*, actor, request: AccessRequest, comment: str = "") -> AccessRequest:
    return _decide(actor=actor, request=request, approve=True, comment=comment)


def access_request_deny(*, actor, request: AccessRequest, comment: str = "") -> AccessRequest:
    return _decide(actor=actor, request=request, approve=False, comment=comment)


def access_request_cancel(*, actor, request: AccessRequest) -> AccessRequest:
    """The requester (or beneficiary, or an admin) withdraws a request still waiting for approval."""
    with audit_context(actor=actor), transaction.atomic():
        request = _locked(request)
        if actor.pk not in (request.requester_id, request.beneficiary_id) and not is_admin(actor):
            raise PermissionDenied("Only the requester, the beneficiary or an admin can cancel this request.")
        if request.status != S.PENDING:
            raise ValidationError(
                f"Request #{request.pk} is {request.get_status_display().lower()}: only a pending request can be cancelled."
            )
        request.status = S.CANCELLED
        request.ended_at = timezone.now()
        request.save()
        request.pending_approvers.clear()
        _tell(request, "Request cancelled", f"Cancelled by {actor}.")
    return request
