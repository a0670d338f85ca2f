"""Celery tasks: thin wrappers that take ids and call one service."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from governance import audit
from governance.jobs import jobs_fail_lost
from governance.models import AuditEvent

from .models import Integration
from .services.bulk import bulk_run
from .services.deletion import integration_delete_run
from .sync import sync_run, sync_start

log = logging.getLogger(__name__)


@shared_task(name="integrations.run_sync_job")
def run_sync_job(job_id: str) -> str:
    return sync_run(job_id=job_id).status


@shared_task(name="integrations.sync_integration")
def sync_integration_message(integration_id: int, full: bool | None = None) -> str:
    """A sync still queued under this older task name starts a sync job, like every other sync.
    Nothing sends it any more: syncs start with ``sync_start``."""
    integration = Integration.objects.filter(pk=integration_id).first()
    if integration is None:
        return "deleted"
    return sync_start(actor=None, integration=integration, full=full).status


def _due(integration: Integration, now) -> bool | None | str:
    """``True`` (a full sync is due), ``None`` (a discovery is due) or ``"no"``."""
    full_due = integration.permissions_last_synced_at is None or (
        integration.permissions_last_synced_at <= now - integration.permissions_sync_interval
    )
    if full_due:
        return True
    discovery_due = integration.resources_last_synced_at is None or (
        integration.resources_last_synced_at <= now - integration.resources_sync_interval
    )
    return None if discovery_due else "no"


def due_integrations(now=None, errors: list | None = None) -> list[tuple[Integration, bool | None]]:
    """Integrations whose discovery (``full=None``) or full permission sync (``full=True``) is due.

    Each integration is judged on its own: one whose schedule cannot be computed (an interval out of
    range, saved before intervals were bounded) is left out and reported in ``errors`` as
    ``(integration, exception)``; the others are still due."""
    now = now or timezone.now()
    due = []
    integrations = Integration.objects.filter(deletion_started_at=None).select_related("agent")
    for integration in integrations.iterator(chunk_size=500):
        try:
            full = _due(integration, now)
        except (OverflowError, ValueError, TypeError) as exc:
            if errors is not None:
                errors.append((integration, exc))
            continue
        if full != "no":
            due.append((integration, full))
    return due


def _schedule_error(integration: Integration, exc: Exception) -> None:
    """One integration's scheduling failed: logged and audited; the tick goes on with the others."""
    log.error("tick: could not schedule %s (%s): %s", integration, integration.pk, exc, exc_info=exc)
    error = f"{type(exc).__name__}: {exc}"
    try:
        # Once a day per integration and error, not at every tick (once a minute) while it lasts.
        if not AuditEvent.objects.filter(
            action="integration.schedule",
            integration_id=integration.pk,
            details__error=error,
            occurred_at__gte=timezone.now() - timedelta(days=1),
        ).exists():
            audit.record("integration.schedule", obj=integration, status="error", details={"error": error})
    except Exception:
        log.exception("tick: could not audit the scheduling error of %s", integration.pk)


@shared_task(name="integrations.tick")
def tick() -> int:
    """Celery beat, once a minute: fail the jobs whose worker is lost, then queue every sync that is due
    (one at a time per integration). One integration's error never keeps the others from syncing."""
    jobs_fail_lost()
    errors: list = []
    queued = 0
    for integration, full in due_integrations(errors=errors):
        try:
            with transaction.atomic():
                job = sync_start(actor=None, integration=integration, full=full)
        except Exception as exc:
            errors.append((integration, exc))
            continue
        queued += job.status == "queued"
    for integration, exc in errors:
        _schedule_error(integration, exc)
    return queued


@shared_task(name="integrations.delete_integration")
def delete_integration_task(job_id: str) -> str:
    """Delete an integration and its inventory, as a job with progress."""
    return integration_delete_run(job_id=job_id).status


@shared_task(name="integrations.bulk_apply")
def bulk_apply_task(job_id: str) -> int:
    """A bulk action too large to apply while the admin waits."""
    return bulk_run(job_id=job_id)
