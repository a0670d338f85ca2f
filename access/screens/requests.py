"""Access requests: the catalogue, my requests and access, approvals and tickets, a request's history."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, Q, prefetch_related_objects
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from governance.models import AuditEvent
from integrations.durations import Duration
from integrations.models import Permission
from integrations.rights import can_manage, is_admin
from integrations.screens.common import add_errors, safe_next, style_form, toast
from integrations.screens.workflows import RULES_PREFETCH, rules_summary
from integrations.selectors import effective_settings

from .. import services
from ..models import AccessRequest, AccessTicket
from ..selectors import access_request_events, requestable_roles, roles_open_to, visible_access_requests

PAGE = 50
LONG_LIST = 200  # the most rows of the lists without pages (my requests, approvals)


class RequestForm(forms.Form):
    duration = forms.ChoiceField(choices=Duration.choices)
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    beneficiary = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True),
        required=False,
        empty_label="Myself",
        label="For",
        help_text="Request on behalf of someone else, or for yourself.",
    )

    def __init__(self, *args, durations=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["duration"].choices = [(d, Duration(d).label) for d in durations]
        style_form(self)


@login_required
def catalogue(request):
    q = request.GET.get("q", "").strip()
    roles = list(requestable_roles(q)[: PAGE + 1])
    return render(
        request,
        "requests/catalogue.html",
        {"nav": "request", "roles": roles[:PAGE], "more": len(roles) > PAGE, "q": q, "page": PAGE},
    )


@login_required
def request_new(request, role_pk):
    role = get_object_or_404(roles_open_to(request.user).select_related("resource__integration"), pk=role_pk)
    eff = effective_settings(role)
    form = RequestForm(request.POST or None, durations=eff.allowed_durations)
    if request.method == "POST" and form.is_valid():
        try:
            access = services.access_request_create(
                actor=request.user,
                role=role,
                duration=form.cleaned_data["duration"],
                justification=form.cleaned_data["justification"],
                beneficiary=form.cleaned_data["beneficiary"],
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            toast(request, f"Request #{access.pk} filed: {access.get_status_display().lower()}.")
            return redirect("access:request-detail", access.pk)
    prerequisites = services.missing_prerequisites(role, request.user)
    if eff.workflow:
        prefetch_related_objects([eff.workflow], RULES_PREFETCH)
    rules = rules_summary(eff.workflow) if eff.workflow else []
    durations = [Duration(d).label for d in eff.allowed_durations]
    return render(
        request,
        "requests/new.html",
        {
            "nav": "request",
            "role": role,
            "eff": eff,
            "form": form,
            "prerequisites": prerequisites,
            "rules": rules,
            "durations": durations,
        },
        status=400 if form.errors else 200,
    )


@login_required
def my_requests(request):
    mine = AccessRequest.objects.filter(
        Q(requester=request.user) | Q(beneficiary=request.user)
    ).select_related("role__resource", "integration", "beneficiary", "requester")
    access = Permission.objects.filter(
        Q(account__user=request.user) | Q(access_requests__beneficiary=request.user), ended_at__isnull=True
    ).select_related("role__resource", "account", "integration")
    access = access.annotate(request_pk=F("access_requests"))
    return render(
        request,
        "requests/mine.html",
        {"nav": "mine", "requests": mine[:LONG_LIST], "access": access.distinct()[:LONG_LIST]},
    )


@login_required
def approvals(request):
    waiting = (
        AccessRequest.objects.filter(status="pending", pending_approvers=request.user)
        .select_related("role__resource", "integration", "beneficiary", "requester")
        .order_by("created_at")
    )
    tickets = AccessTicket.objects.filter(status="open").select_related(
        "request__role__resource", "request__beneficiary"
    )
    if not is_admin(request.user):
        tickets = tickets.filter(assignee=request.user)
    # Bounded like every list: the oldest first, the work to do next; the card says how many there are.
    context = {"nav": "approvals", "shown": LONG_LIST}
    for name, qs in (("waiting", waiting), ("tickets", tickets.order_by("opened_at", "pk"))):
        context[name] = list(qs[:LONG_LIST])
        context[f"{name}_total"] = qs.count() if len(context[name]) == LONG_LIST else len(context[name])
    return render(request, "requests/approvals.html", context)


STATUS = dict(AccessRequest.Status.choices)
NAMED = {
    "access_request.granted": "granted the access",
    "access_request.grant_failed": "could not grant the access",
    "access_request.revoked": "removed the access",
    "access_request.revoke_failed": "could not remove the access",
    "access_request.account_created": "created the account",
    "access_request.account_deleted": "deleted the account made for this request",
    "access_request.ticket_opened": "opened a ticket",
    "access_request.ticket_closed": "closed a ticket",
    "access_request.expired_pending": "expired the request: nobody decided it in time",
    "access_request.permission_kept": "kept what another live request still needs",
    "access_request.extended": "extended the access by a later request",
}


def _event_text(e: AuditEvent) -> str:
    """One line of a request's history, in words; empty for bookkeeping not worth a line."""
    details, kind = e.details or {}, e.object_type.model if e.object_type_id else ""
    if e.action in NAMED:
        extra = details.get("error") or details.get("reason") or details.get("account") or ""
        if e.action == "access_request.granted" and details.get("expires_at"):
            extra = f"until {str(details['expires_at'])[:16].replace('T', ' ')} UTC ({details.get('how')})"
        if e.action == "access_request.permission_kept":
            extra = f"{details.get('role') or details.get('account')} → request #{details.get('needed_by_request')}"
        return NAMED[e.action] + (f": {extra}" if extra else "")
    if kind == "accessrequest" and e.action.endswith(".create"):
        return "filed the request"
    if kind == "accessrequest" and e.action.endswith(".update"):
        changes = details.get("changes") or {}
        if "status" in changes:
            c = changes["status"]
            return f"status: {STATUS.get(c['from'], c['from'])} → {STATUS.get(c['to'], c['to'])}"
        if "current_step" in changes:
            return f"moved on to step {changes['current_step']['to'] + 1}"
        return ""
    if kind == "accessdecision" and e.action.endswith(".create"):
        after = details.get("after") or {}
        verb = "approved" if after.get("approved") else "denied"
        how = " automatically" if after.get("automatic") else ""
        return f"{verb} step {(after.get('step') or 0) + 1}{how}"
    if kind == "permission" and e.action.endswith(".create"):
        return "recorded the permission"
    return ""


def history(access: AccessRequest) -> list[tuple[AuditEvent, str]]:
    """The request's audit events, in words: its own, and those of its decisions, tickets and permissions."""
    lines = [(e, _event_text(e)) for e in access_request_events(access)[:300]]
    return [(e, text) for e, text in lines if text]


def _visible(request, pk, *related) -> AccessRequest:
    """The request, if the user may see it; 404 otherwise, as in the API: whether it exists, and its
    status, are not theirs to learn."""
    return get_object_or_404(visible_access_requests(request.user).select_related(*related), pk=pk)


@login_required
def request_detail(request, pk):
    access = _visible(request, pk, "role__resource", "integration", "beneficiary", "requester")
    step = access.steps[access.current_step] if access.status == "pending" and access.steps else None
    events = history(access)
    return render(
        request,
        "requests/detail.html",
        {
            "nav": "mine",
            "access": access,
            "steps": access.steps,
            "decisions": access.decisions.select_related("approver"),
            "can_decide": step is not None
            and request.user.pk in services.step_users(step)
            and request.user.pk not in (access.requester_id, access.beneficiary_id)
            and not access.decisions.filter(step=access.current_step, approver=request.user).exists(),
            "can_cancel": access.status == "pending",
            "can_end": access.status in AccessRequest.LIVE,
            "can_retry": access.status == AccessRequest.Status.FAILED
            and can_manage(request.user, access.integration),
            "tickets": access.tickets.select_related("assignee"),
            "permissions": access.permissions.select_related("role__resource", "account"),
            "events": events,
        },
    )


def refusal(exc: ValidationError | PermissionDenied) -> str:
    """A service's refusal in one line: what was wrong, or who may do it."""
    return " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


def _act(request, pk, action, done: str):
    access = _visible(request, pk)
    try:
        action(access)
    except (ValidationError, PermissionDenied) as exc:
        toast(request, refusal(exc), "error")
    else:
        toast(request, done)
    return redirect(safe_next(request, reverse("access:request-detail", args=[pk])))


@login_required
@require_POST
def request_approve(request, pk):
    comment = request.POST.get("comment", "")
    return _act(
        request,
        pk,
        lambda a: services.access_request_approve(actor=request.user, request=a, comment=comment),
        "Approved.",
    )


@login_required
@require_POST
def request_deny(request, pk):
    comment = request.POST.get("comment", "")
    return _act(
        request,
        pk,
        lambda a: services.access_request_deny(actor=request.user, request=a, comment=comment),
        "Denied.",
    )


@login_required
@require_POST
def request_cancel(request, pk):
    return _act(
        request, pk, lambda a: services.access_request_cancel(actor=request.user, request=a), "Cancelled."
    )


@login_required
@require_POST
def request_end(request, pk):
    return _act(
        request, pk, lambda a: services.access_request_revoke(actor=request.user, request=a), "Access ended."
    )


@login_required
@require_POST
def request_retry(request, pk):
    return _act(
        request,
        pk,
        lambda a: services.access_request_retry(actor=request.user, request=a),
        "Granting again: the result shows here in a moment.",
    )


@login_required
@require_POST
def ticket_close(request, pk):
    ticket = get_object_or_404(
        AccessTicket.objects.filter(request__in=visible_access_requests(request.user).values("pk")), pk=pk
    )
    try:
        services.access_ticket_close(actor=request.user, ticket=ticket, note=request.POST.get("note", ""))
    except (ValidationError, PermissionDenied) as exc:
        toast(request, refusal(exc), "error")
    else:
        toast(request, f"Ticket #{ticket.pk} closed.")
    return redirect("access:request-detail", ticket.request_id)
