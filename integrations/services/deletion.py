"""Deleting an integration as a job with progress (the screens, the API and the Django admin start it).

The deletion itself is :func:`integrations.cascade.integration_delete`; this module queues it, checks who
may (admins only) and runs it as a job that can be stopped between two batches.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, ValidationError

from governance import audit
from governance.jobs import JobRun, job_send, job_start
from governance.models import Job

from ..cascade import _readable, integration_delete, integration_inventory_size
from ..models import Integration
from ..rights import can_delete_integration

log = logging.getLogger(__name__)

JOB_KIND = "delete"


# -- as a job -----------------------------------------------------------------------------------------


class DeletionCancelled(Exception):
    """Someone cancelled the deletion job: it stops between two batches."""


def integration_delete_start(*, actor, integration: Integration) -> Job:
    """Queue the deletion of ``integration`` as a job (``skipped`` when one is already queued or running).
    Admins only (``rights.can_delete_integration``), whoever calls: a screen, the API, a script."""
    if actor is not None and not can_delete_integration(actor, integration):
        raise PermissionDenied("Only admins delete integrations.")

    job = job_start(
        actor=actor,
        kind=JOB_KIND,
        integration_id=integration.pk,
        subject=integration,
        params={"name": integration.name},
    )
    if job.status == Job.Status.QUEUED:
        # Deleting writes only to the database: any worker will do, not only the integration's agent's.
        job_send(job, "integrations.delete_integration")
        job.refresh_from_db()
    return job


def integration_delete_run(*, job_id) -> Job:
    """Run a queued deletion job (the task calls this). Safe to run again: it goes on where it stopped."""
    job = Job.objects.get(pk=job_id)
    if job.is_finished:
        return job
    with JobRun(job) as run:
        integration = Integration.objects.filter(pk=job.integration_id).first()
        if integration is None:
            return run.finish(Job.Status.SUCCEEDED, message="Already deleted.")
        run.start(phase="waiting for its syncs and grants to end")
        run.progress(total=integration_inventory_size(integration.pk), force=True)
        so_far: dict[str, int] = {}

        def progress(counts: dict, done: int) -> None:
            so_far.update(counts)
            if run.should_cancel():  # between batches: each one is committed, the integration stays marked
                raise DeletionCancelled
            run.progress(
                counts=_readable(counts), done=done, total=max(done, run.job.total or 0), phase="deleting"
            )

        try:
            counts = integration_delete(actor=job.created_by, integration=integration, progress=progress)
        except ValidationError as exc:
            message = " ".join(exc.messages)
            return run.finish(Job.Status.FAILED, error=message, message=message)
        except DeletionCancelled:
            with audit.audit_context(actor=job.created_by):
                audit.record(
                    "integration.delete",
                    obj=integration,
                    status="error",
                    details={"cancelled": True, "counts": dict(sorted(so_far.items()))},
                )
            message = f"Cancelled after {sum(so_far.values()):,} rows; delete it again to finish."
            return run.finish(Job.Status.CANCELLED, message=message)
        total = sum(counts.values())
        run.progress(counts=_readable(counts), done=total, total=total, phase="done", force=True)
        return run.finish(
            Job.Status.SUCCEEDED, message=f"{job.params.get('name', integration)} deleted: {total:,} rows."
        )
