"""Bulk actions: one change set over many integrations, resources or roles.

Small selections are applied at once; larger ones (more than ``BACKGROUND_THRESHOLD``) run
as a background job with progress (the task ``integrations.bulk_apply`` runs :func:`bulk_run`).
Both apply the change set
set-based and audit each changed object (see :mod:`integrations.services.changes`).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError

from governance.jobs import JobRun, job_send, job_start
from governance.models import Job

from ..validators import validate_changes
from .changes import apply_changes_audited, check_policy_actions

BACKGROUND_THRESHOLD = 5000
JOB_KIND = "bulk"


def bulk_apply(*, actor, target: str, ids: Sequence[int], changes: dict, progress=None) -> int:
    """Apply ``changes`` to the objects ``ids`` of ``target`` now; returns how many changed."""
    if not ids:
        raise ValidationError("No objects are selected: nothing to change.")
    return apply_changes_audited(
        actor=actor, target=target, ids=ids, changes=changes, via="bulk", progress=progress
    )


def bulk_start(*, actor, target: str, ids: Sequence[int], changes: dict) -> Job:
    """Queue a bulk action as a background job (for large selections); returns the job."""
    if not ids:
        raise ValidationError("No objects are selected: nothing to change.")
    changes = validate_changes(target, changes)
    check_policy_actions(actor, target, changes, ids)
    job = job_start(
        actor=actor, kind=JOB_KIND, params={"target": target, "ids": sorted(set(ids)), "changes": changes}
    )
    job.total = len(set(ids))
    job.save(update_fields=["total"])
    job_send(job, "integrations.bulk_apply")
    job.refresh_from_db()
    return job


def bulk_run(*, job_id) -> int:
    """Run a queued bulk job (the task calls this), reporting progress on it; returns how many changed.
    A job already finished is left alone."""
    job = Job.objects.get(pk=job_id)
    if job.is_finished:
        return 0
    with JobRun(job) as run:
        run.start("Applying changes")
        params = job.params
        try:
            changed = bulk_apply(
                actor=job.created_by,
                target=params["target"],
                ids=params["ids"],
                changes=params["changes"],
                progress=lambda done, total: run.progress(done=done, total=total),
            )
        except Exception as exc:
            run.finish(Job.Status.FAILED, error=str(exc), message=f"Failed: {exc}")
            raise
        run.job.counts = {"selected": len(params["ids"]), "changed": changed}
        run.finish(Job.Status.SUCCEEDED, message=f"{changed} of {len(params['ids'])} objects changed.")
    return changed
