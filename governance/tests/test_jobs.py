"""Jobs never stay running or queued without a live worker: heartbeats, lost workers, sending, cancelling."""

from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone

from conftest import wait_for
from governance.jobs import JobRun, job_cancel, job_start, jobs_fail_lost
from governance.models import AuditEvent, Job
from integrations.sync import sync_start
from integrations.tasks import tick

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "jobs"])


def dead_sync(integration, *, beat_age: float) -> Job:
    """A sync job left running by a worker that died ``beat_age`` seconds after its last heartbeat."""
    job = job_start(actor=None, kind="sync", integration_id=integration.pk, subject=integration)
    beat = timezone.now() - timedelta(seconds=beat_age)
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, started_at=beat, heartbeat_at=beat, task_id="sent"
    )
    return Job.objects.get(pk=job.pk)


def test_a_running_job_beats_through_its_progress_connection_while_its_work_is_uncommitted(
    settings, integration
):
    settings.JOB_HEARTBEAT_LIMIT = 1.6  # a beat every 0.2 s
    job = job_start(actor=None, kind="probe", integration_id=integration.pk)
    with transaction.atomic():  # the job's own long transaction, as a sync's
        run = JobRun(job)
        run.start()
        first = Job.objects.using("jobs").get(pk=job.pk).heartbeat_at
        # Seen from outside the transaction:
        wait_for(lambda: Job.objects.using("jobs").get(pk=job.pk).heartbeat_at > first, 10, "a later beat")
        run.finish(Job.Status.SUCCEEDED)
    assert not run._beating.is_alive()  # the heartbeat ends with the job
    connections["jobs"].close()


def test_the_next_start_fails_a_sync_whose_worker_is_lost_and_runs(settings, integration):
    settings.JOB_HEARTBEAT_LIMIT = 60
    dead = dead_sync(integration, beat_age=10)
    assert sync_start(actor=None, integration=integration).status == Job.Status.SKIPPED  # still in time
    Job.objects.filter(pk=dead.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=61))
    job = sync_start(actor=None, integration=integration)
    assert job.status == Job.Status.SUCCEEDED, job.error
    dead.refresh_from_db()
    assert dead.status == Job.Status.FAILED and dead.error.startswith("Worker lost: no heartbeat since")
    assert dead.cancel_requested  # a worker that comes back stops at its next check
    assert AuditEvent.objects.filter(action="job.lost", object_id=str(dead.pk), status="error").exists()


def test_the_tick_fails_lost_and_unsent_jobs_and_the_integration_syncs_again(
    settings, integration, make_integration
):
    settings.JOB_HEARTBEAT_LIMIT = 60
    dead = dead_sync(integration, beat_age=120)
    other = make_integration(name="Other")
    unsent = job_start(actor=None, kind="sync", integration_id=other.pk, subject=other)  # its sender died
    Job.objects.filter(pk=unsent.pk).update(created_at=timezone.now() - timedelta(seconds=120))
    alive = job_start(actor=None, kind="bulk")
    Job.objects.filter(pk=alive.pk).update(
        status=Job.Status.RUNNING, heartbeat_at=timezone.now() - timedelta(seconds=5), task_id="sent"
    )
    assert tick() == 2  # a sync of each is queued again (and run in-process: no broker here)
    dead.refresh_from_db()
    unsent.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == Job.Status.FAILED and "Worker lost" in dead.error
    assert unsent.status == Job.Status.FAILED and unsent.error.startswith("Never sent to a worker")
    assert alive.status == Job.Status.RUNNING  # a beating worker keeps its job
    for i in (integration, other):
        latest = Job.objects.filter(kind="sync", integration_id=i.pk).order_by("-created_at").first()
        assert latest.status == Job.Status.SUCCEEDED, latest.error


def test_a_job_is_sent_only_once_committed_and_is_then_marked_sent(integration):
    with transaction.atomic():
        job = sync_start(actor=None, integration=integration)
        assert job.status == Job.Status.QUEUED and job.task_id == ""  # nothing sent before the commit
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.task_id  # sent (here: run in-process)


def test_cancelling_a_job_whose_worker_is_gone_cancels_it_at_once(settings, integration, admin_user):
    settings.JOB_HEARTBEAT_LIMIT = 60  # a beat every 7.5 s: gone after 22.5 s without one
    orphan = dead_sync(integration, beat_age=30)
    job = job_cancel(actor=admin_user, job=orphan)
    assert job.status == Job.Status.CANCELLED and job.finished_at is not None
    assert job.log[-1]["message"] == "Cancelled: its worker was gone."
    live = job_start(actor=None, kind="bulk")
    Job.objects.filter(pk=live.pk).update(
        status=Job.Status.RUNNING, heartbeat_at=timezone.now(), task_id="sent"
    )
    job = job_cancel(actor=admin_user, job=Job.objects.get(pk=live.pk))
    assert job.status == Job.Status.RUNNING and job.cancel_requested  # stops at its next check


def test_a_worker_given_up_on_keeps_its_job_failed(settings, integration):
    settings.JOB_HEARTBEAT_LIMIT = 60
    job = job_start(actor=None, kind="probe", integration_id=integration.pk)
    run = JobRun(job)
    run.start()
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=61))
    run._stop_heartbeat()  # as if it had stalled
    assert jobs_fail_lost() == 1
    assert run.should_cancel()
    run.finish(Job.Status.SUCCEEDED)
    assert Job.objects.get(pk=job.pk).status == Job.Status.FAILED
    connections["jobs"].close()


def test_a_sent_job_no_worker_started_is_failed_after_the_queued_limit_and_its_late_message_is_ignored(
    settings, integration
):
    """A broker that lost the message (restarted without persistence) would otherwise leave the job queued
    for ever, and every later sync of the integration skipped."""
    from integrations.sync import sync_run

    settings.JOB_QUEUED_LIMIT = 600
    lost = job_start(actor=None, kind="sync", integration_id=integration.pk, subject=integration)
    waiting = timezone.now() - timedelta(seconds=300)
    Job.objects.filter(pk=lost.pk).update(task_id="sent", created_at=waiting)
    assert jobs_fail_lost() == 0  # five minutes behind busy workers: still waiting
    Job.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(seconds=700))
    assert jobs_fail_lost() == 1
    lost.refresh_from_db()
    assert lost.status == Job.Status.FAILED and lost.error.startswith("No worker started it within 600 s")
    assert AuditEvent.objects.filter(action="job.lost", object_id=str(lost.pk), status="error").exists()
    # The message arrives after all: the job stays failed and nothing runs.
    assert sync_run(job_id=lost.pk).status == Job.Status.FAILED
    # The next sync of the integration is not skipped.
    assert sync_start(actor=None, integration=integration).status == Job.Status.SUCCEEDED
