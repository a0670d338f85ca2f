"""Celery tasks: thin wrappers that take ids and call one service."""

from __future__ import annotations

from celery import shared_task
from django.db.models import F, Q
from django.utils import timezone

from .models import Integration


def queue_for(integration: Integration) -> str:
    """Connector work of an integration saved on an agent runs on that agent's queue."""
    return integration.agent.queue if integration.agent_id else "default"


@shared_task(name="integrations.run_sync_job")
def run_sync_job(job_id: str) -> str:
    from .services.sync import sync_run

    return sync_run(job_id=job_id).status


@shared_task(name="integrations.sync_integration")
def sync_integration_message(integration_id: int, full: bool | None = None) -> str:
    """A sync still queued under this older task name starts a sync job, like every other sync.
    Nothing sends it any more: syncs start with ``sync_start``."""
    from .services.sync import sync_start

    integration = Integration.objects.filter(pk=integration_id).first()
    if integration is None:
        return "deleted"
    return sync_start(actor=None, integration=integration, full=full).status


def due_integrations(now=None) -> list[tuple[Integration, bool | None]]:
    """Integrations whose discovery (``full=None``) or full permission sync (``full=True``) is due."""
    now = now or timezone.now()
    permissions_due = Q(permissions_last_synced_at__isnull=True) | Q(
        permissions_last_synced_at__lte=now - F("permissions_sync_interval")
    )
    discovery_due = Q(resources_last_synced_at__isnull=True) | Q(
        resources_last_synced_at__lte=now - F("resources_sync_interval")
    )
    due = []
    for integration in Integration.objects.filter(permissions_due | discovery_due).select_related("agent"):
        full_due = integration.permissions_last_synced_at is None or (
            integration.permissions_last_synced_at <= now - integration.permissions_sync_interval
        )
        due.append((integration, True if full_due else None))
    return due


@shared_task(name="integrations.tick")
def tick() -> int:
    """Celery beat, once a minute: queue every sync that is due (one at a time per integration)."""
    from .services.sync import sync_start

    queued = 0
    for integration, full in due_integrations():
        job = sync_start(actor=None, integration=integration, full=full)
        queued += job.status == "queued"
    return queued


@shared_task(name="integrations.grant_access")
def grant_access_task(request_id: int) -> str:
    """Grant an approved access request through its connector (failures are retried by the expiry pass)."""
    from .services.access_requests import access_request_grant

    return access_request_grant(request_id=request_id).status


@shared_task(name="integrations.expire_access")
def expire_access() -> dict:
    """Celery beat, once a minute: revoke expired access, expire stale requests, retry grants, remind."""
    from .services.access_requests import access_requests_expire

    return access_requests_expire()


@shared_task(name="integrations.bulk_apply")
def bulk_apply_task(job_id: str) -> int:
    """A bulk action too large to apply while the admin waits."""
    from .services.bulk import bulk_run

    return bulk_run(job_id=job_id)
