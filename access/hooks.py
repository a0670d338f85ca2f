"""What just-in-time access plugs into the inventory (``integrations.hooks``): how many requests follow a
workflow, which request granted a permission and who approved it, a person's open requests."""

from __future__ import annotations

from collections.abc import Iterable

from django.urls import reverse

from integrations import hooks


def _pending_requests(workflow) -> int:
    from .models import AccessRequest

    return AccessRequest.objects.filter(workflow=workflow, status=AccessRequest.Status.PENDING).count()


def _openable(viewer, request_ids: set[int]) -> set[int]:
    """Which of the requests ``viewer`` may open (all of them for ``None``, the portal itself)."""
    if viewer is None or not request_ids:
        return set(request_ids)
    from .selectors import visible_access_requests

    return set(visible_access_requests(viewer).filter(pk__in=request_ids).values_list("pk", flat=True))


def _url(request_id: int, openable: set[int]) -> str:
    return reverse("access:request-detail", args=[request_id]) if request_id in openable else ""


def _approved_by(decisions) -> str:
    """ "approved by Bea Boss (boss), Olga Owner (owner)", "approved automatically", or ''."""
    people = [str(d.approver) for d in decisions if not d.automatic and d.approver_id is not None]
    automatic = any(d.automatic for d in decisions)
    if people:
        return "approved by " + ", ".join(people) + (" and automatically" if automatic else "")
    return "approved automatically" if automatic else ""


def _provenance(permissions: Iterable, *, viewer=None) -> dict[int, list[dict]]:
    """The access request each permission was granted for, with its approvers: three queries for any number."""
    from .models import AccessDecision, RequestPermission

    ids = [p.pk for p in permissions]
    links = list(
        RequestPermission.objects.filter(permission_id__in=ids).values_list("permission_id", "request_id")
    )
    request_ids = {request_id for _, request_id in links}
    decisions: dict[int, list] = {}
    approvals = AccessDecision.objects.filter(request_id__in=request_ids, approved=True).select_related(
        "approver"
    )
    for decision in approvals.order_by("decided_at", "id"):
        decisions.setdefault(decision.request_id, []).append(decision)
    openable = _openable(viewer, request_ids)
    out: dict[int, list[dict]] = {}
    for permission_id, request_id in links:
        approved = _approved_by(decisions.get(request_id, []))
        label = f"granted by access request #{request_id}" + (f" ({approved})" if approved else "")
        out[permission_id] = [{"kind": "request", "label": label, "url": _url(request_id, openable)}]
    return out


def _open_requests(user, *, viewer=None, limit: int) -> dict:
    """The open requests (pending, being granted, granted) giving ``user`` access, newest first."""
    from .models import AccessRequest

    requests = (
        AccessRequest.objects.filter(beneficiary=user, status__in=AccessRequest.OPEN)
        .select_related("role__resource", "integration")
        .order_by("-created_at", "-id")
    )
    rows = list(requests[:limit])
    total = requests.count() if len(rows) == limit else len(rows)
    openable = _openable(viewer, {r.pk for r in rows})
    return {
        "total": total,
        "rows": [
            {
                "id": r.pk,
                "label": f"{r.integration.name}: {r.role}",
                "status": r.get_status_display(),
                "url": _url(r.pk, openable),
            }
            for r in rows
        ],
    }


def connect() -> None:
    hooks.workflow_pending_requests.register(_pending_requests)
    hooks.permission_provenance.register(_provenance)
    hooks.open_requests_of.register(_open_requests)
