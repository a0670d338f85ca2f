"""What just-in-time access plugs into the inventory (``integrations.hooks``)."""

from __future__ import annotations

from integrations import hooks


def _pending_requests(workflow) -> int:
    from .models import AccessRequest

    return AccessRequest.objects.filter(workflow=workflow, status=AccessRequest.Status.PENDING).count()


def connect() -> None:
    hooks.workflow_pending_requests.register(_pending_requests)
