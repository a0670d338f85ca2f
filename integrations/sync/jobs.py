"""Sync jobs: :func:`sync_start` queues a sync as a job, :func:`sync_run` runs it (the worker's task).

Owns what a sync is as a job: one at a time per integration, its progress, a cancellation asked
for before or during the run, and the job's outcome and summary.
"""

from __future__ import annotations

from governance.jobs import JobRun, job_send, job_start
from governance.models import Job

from ..models import Integration
from .result import SyncCancelled, SyncError
from .run import sync_integration


def sync_start(*, actor, integration: Integration, full: bool | None = None) -> Job:
    """Queue a sync of ``integration``. Another sync already queued or running: the returned job is ``skipped``."""

    job = job_start(
        actor=actor, kind="sync", integration_id=integration.pk, subject=integration, params={"full": full}
    )
    if job.status == Job.Status.QUEUED:
        job_send(job, "integrations.run_sync_job", queue=integration.queue)
        job.refresh_from_db()  # sent (or run, without a broker), or failed to send
    return job


def sync_run(*, job_id) -> Job:
    """Run a queued sync job (the task calls this). Safe to call again for the same job: a finished
    job is left alone, a job whose worker died is run again from the start."""
    job = Job.objects.get(pk=job_id)
    if job.is_finished:
        return job
    with JobRun(job) as run:
        return _sync_run(job, run)


def _sync_run(job: Job, run: JobRun) -> Job:
    if job.cancel_requested:
        return run.finish(Job.Status.CANCELLED, message="Cancelled before it started.")
    integration = Integration.objects.filter(pk=job.integration_id, deletion_started_at=None).first()
    if integration is None:
        return run.finish(Job.Status.FAILED, error="The integration was deleted.")
    run.start(phase="connecting")

    def progress(counts: dict, phase: str) -> None:
        run.progress(counts=counts, done=counts.get("read", 0), phase=phase)

    full = job.params.get("full")
    try:
        result = sync_integration(
            actor=job.created_by,
            integration=integration,
            full=full,
            progress=progress,
            should_cancel=run.should_cancel,
        )
    except SyncCancelled as exc:
        return run.finish(Job.Status.CANCELLED, message=str(exc))
    except SyncError as exc:
        return run.finish(Job.Status.FAILED, error=str(exc), message=str(exc))
    run.progress(counts=result.counts, done=result.counts.get("read", 0), phase="done", force=True)
    summary = (
        ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in sorted(result.counts.items())) or "no changes"
    )
    return run.finish(
        Job.Status.SUCCEEDED, message=f"{'Full' if result.full else 'Delta'} sync done: {summary}."
    )
