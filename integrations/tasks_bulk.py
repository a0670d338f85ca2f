"""The bulk-action task: takes a job id and calls the bulk service, reporting progress on the job."""

from celery import shared_task

from governance.jobs import JobRun
from governance.models import Job


@shared_task(name="integrations.bulk_apply")
def bulk_apply_task(job_id: str) -> int:
    from .services.bulk import bulk_apply

    job = Job.objects.get(pk=job_id)
    if job.is_finished:
        return 0
    run = JobRun(job)
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
