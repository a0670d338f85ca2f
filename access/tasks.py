"""Celery tasks of just-in-time access: thin wrappers that take ids and call one service."""

from __future__ import annotations

from celery import shared_task

from .services import access_request_grant, access_requests_expire


@shared_task(name="access.grant_access")
def grant_access_task(request_id: int) -> str:
    """Grant an approved access request through its connector (failures are retried by the expiry pass)."""
    return access_request_grant(request_id=request_id).status


@shared_task(name="access.expire_access")
def expire_access() -> dict:
    """Celery beat, once a minute: revoke expired access, expire stale requests, retry grants, remind."""
    return access_requests_expire()


# Messages queued before these tasks moved to this app carry their older names: they still run.
@shared_task(name="integrations.grant_access")
def grant_access_queued_before(request_id: int) -> str:
    return grant_access_task(request_id)


@shared_task(name="integrations.expire_access")
def expire_access_queued_before() -> dict:
    return expire_access()
