"""Reads of just-in-time access: the catalogue of requestable roles and who sees which request."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet

from governance.models import AuditEvent
from integrations.models import Permission, Role
from integrations.rights import is_admin, manageable_integrations, manageable_roles

from .models import AccessDecision, AccessRequest, AccessTicket, RequestPermission


def requestable_roles(q: str = "") -> QuerySet[Role]:
    """Roles that can be requested: effectively requestable (the rule ``effective_settings`` applies)
    and with an approval workflow somewhere from role to integration, so a request can be decided."""
    roles = Role.objects.filter(
        Q(workflow__isnull=False)
        | Q(resource__workflow__isnull=False)
        | Q(resource__integration__default_workflow__isnull=False),
        requestable=True,
        removed_at__isnull=True,
        resource__requestable=True,
        resource__removed_at__isnull=True,
        resource__integration__requestable=True,
    ).select_related("resource__integration")
    for word in q.split():  # every word somewhere: "corporate directory data-bi-dev"
        roles = roles.filter(
            Q(name__icontains=word)
            | Q(resource__name__icontains=word)
            | Q(resource__integration__name__icontains=word)
        )
    return roles.order_by("resource__integration__name", "resource__name", "name")


def roles_open_to(user) -> QuerySet[Role]:
    """The roles ``user`` may open the request form of and file a request for: the catalogue's
    (:func:`requestable_roles`) and those they manage. Any other role is 404 to them, on the request
    screen as in the API: its description, owner and workflow are not theirs to read."""
    return Role.objects.filter(
        Q(pk__in=requestable_roles().values("pk")) | Q(pk__in=manageable_roles(user).values("pk"))
    )


def visible_access_requests(user) -> QuerySet[AccessRequest]:
    """The access requests ``user`` may see; the screens and the API both ask here.

    Admins see every request. Others see the requests they filed or that give them access,
    those waiting for their approval now, those they decided, those whose tickets they are
    assigned, and every request of an integration they manage.
    """
    if is_admin(user):
        return AccessRequest.objects.all()
    if not (user and user.is_authenticated):
        return AccessRequest.objects.none()
    awaiting = AccessRequest.objects.filter(pending_approvers=user).values("pk")
    decided = AccessDecision.objects.filter(approver=user).values("request_id")
    assigned = AccessTicket.objects.filter(assignee=user).values("request_id")
    return AccessRequest.objects.filter(
        Q(requester=user)
        | Q(beneficiary=user)
        | Q(pk__in=awaiting)
        | Q(pk__in=decided)
        | Q(pk__in=assigned)
        | Q(integration__in=manageable_integrations(user))
    )


def access_request_events(request: AccessRequest):
    """A request's history, oldest first: the audit events of the request itself and of its decisions,
    tickets and permissions."""
    types = ContentType.objects.get_for_models(AccessRequest, AccessDecision, AccessTicket, Permission)
    permissions = RequestPermission.objects.filter(request=request).values_list("permission_id", flat=True)
    return (
        AuditEvent.objects.filter(
            Q(object_type=types[AccessRequest], object_id=str(request.pk))
            | Q(
                object_type__in=[types[AccessDecision], types[AccessTicket]],
                details__after__request_id=request.pk,
            )
            | Q(object_type=types[Permission], object_id__in=[str(pk) for pk in permissions])
        )
        .select_related("object_type")
        .order_by("occurred_at", "id")
    )
