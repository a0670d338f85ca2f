"""Tasks through a real Celery worker process on the real Redis broker and PostgreSQL."""

import os
import signal
import subprocess
import uuid

import pytest
import redis
from celery import Celery
from django.db import connection

from conftest import DEMO_CONFIG, wait_for
from governance.jobs import job_start
from governance.models import AuditEvent, Job
from integrations.models import Account, Agent, Integration, Permission
from integrations.sync import sync_start
from integrations.tasks import run_sync_job

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def broker():
    redis.Redis.from_url(REDIS_URL).ping()  # a missing Redis is a failure, not a skip
    # Not the current app: the portal's tasks keep running through the governance app (eager in tests).
    client = Celery("governance-test-client", broker=REDIS_URL, set_as_current=False)
    client.conf.update(task_serializer="json", accept_content=["json"])
    yield client
    client.close()


@pytest.fixture
def make_worker(broker, portal_process):
    """Start real Celery worker processes on the test database, each on its own agent queue."""

    def start(pool: str = "solo"):
        agent = f"test-{uuid.uuid4().hex[:8]}"
        proc = portal_process(
            agent,
            ["celery", "-A", "governance", "worker", "-Q", f"agent.{agent}", "--pool", pool,
             "--concurrency", "1", "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "INFO"],
            {**os.environ, "CELERY_BROKER_URL": REDIS_URL},
        )  # fmt: skip
        return agent, proc

    return start


@pytest.fixture
def worker(make_worker):
    return make_worker()


def big_directory(make_integration, agent: str):
    config = {**DEMO_CONFIG, "users": 40000, "groups": 2000, "memberships": 4}
    return make_integration(
        name="Big directory", connection_config=config, agent=Agent.objects.create(name=agent)
    )


def queue_sync(broker, integration) -> Job:
    """What sync_start does, with the task sent through the real broker."""
    job = job_start(
        actor=None, kind="sync", integration_id=integration.pk, subject=integration, params={"full": True}
    )
    broker.send_task(run_sync_job.name, args=[str(job.pk)], queue=integration.queue)
    return job


def running_with_progress(job: Job):
    job.refresh_from_db()
    return job.status == Job.Status.RUNNING and job.done >= 5000


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_sync_whose_worker_is_killed_runs_again_and_completes(broker, make_worker, make_integration):
    agent, proc = make_worker(pool="prefork")
    integration = big_directory(make_integration, agent)
    job = queue_sync(broker, integration)
    wait_for(lambda: running_with_progress(job), what="live progress of the running sync")
    assert (
        Account.objects.filter(integration=integration).count() == 0
    )  # progress is visible, rows are not yet
    child = int(subprocess.check_output(["pgrep", "-P", str(proc.pid)]).split()[0])
    os.kill(child, signal.SIGKILL)  # the pool process dies mid-sync
    wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, what="the re-delivered sync to finish")
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert "Restarted after an interrupted run." in [line["message"] for line in job.log]
    assert Account.objects.filter(integration=integration, removed_at=None).count() == 40000
    assert Permission.objects.filter(integration=integration, ended_at=None).count() == 160000


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_lost_database_connection_fails_the_sync_cleanly(broker, make_worker, make_integration):
    agent, proc = make_worker()
    integration = big_directory(make_integration, agent)
    job = queue_sync(broker, integration)
    wait_for(lambda: running_with_progress(job), what="the sync to be running")
    with connection.cursor() as c:  # kill the worker's writing connection, as a database failover would
        c.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
        )
        assert c.fetchall(), "the sync's transaction was found"
    wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, what="the sync to end")
    job.refresh_from_db()
    integration.refresh_from_db()
    assert job.status == Job.Status.FAILED and "Sync of Big directory failed" in job.error
    assert integration.last_sync_status == "failed"
    assert AuditEvent.objects.filter(
        action="integration.sync", status="error", integration_id=integration.pk
    ).exists()
    assert not Account.objects.filter(integration=integration).exists()  # nothing half-written
    assert proc.poll() is None  # the worker lives on


def wait_for_sync(integration, proc, timeout: float = 60) -> Job:
    """The integration's sync job once it finished; the worker process must stay alive meanwhile."""

    def finished():
        assert proc.poll() is None, "the worker died"
        return Job.objects.filter(
            kind="sync", integration_id=integration.pk, finished_at__isnull=False
        ).first()

    return wait_for(finished, timeout, what="the sync job to finish")


def assert_synced(integration, job: Job) -> None:
    assert job.status == Job.Status.SUCCEEDED, job.error
    integration.refresh_from_db()
    assert integration.last_sync_status == Integration.SyncStatus.SUCCEEDED, integration.last_sync_error
    assert integration.resources.count() == 10  # DEMO_CONFIG has 10 groups
    assert integration.accounts.count() == 40


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_sync_runs_on_the_agents_worker(broker, worker, make_integration):
    agent_name, proc = worker
    integration = make_integration(name="Directory", agent=Agent.objects.create(name=agent_name))
    assert integration.queue == f"agent.{agent_name}"
    queue_sync(broker, integration)
    assert_synced(integration, wait_for_sync(integration, proc))


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_sync_queued_under_the_older_task_name_runs_as_a_job(broker, worker, make_integration):
    agent_name, proc = worker
    integration = make_integration(name="Directory", agent=Agent.objects.create(name=agent_name))
    # A message left in the queue by an earlier release, sent through the real broker.
    broker.send_task("integrations.sync_integration", args=[integration.pk, True], queue=integration.queue)
    job = wait_for_sync(integration, proc)
    assert job.params == {"full": True} and "Full sync done" in job.log[-1]["message"]
    assert_synced(integration, job)


def test_agent_integrations_route_to_their_queue(db, make_integration):
    integration = make_integration()
    assert integration.queue == "default"
    integration.agent = Agent.objects.create(name="eu-west")
    assert integration.queue == "agent.eu-west"


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_without_a_broker_sync_start_runs_in_process(make_integration, settings):
    assert settings.CELERY_TASK_ALWAYS_EAGER  # no CELERY_BROKER_URL in the test settings
    integration = make_integration()
    job = sync_start(actor=None, integration=integration, full=True)
    # No worker runs here: the job ran in this process, on commit, before sync_start returned.
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.counts["accounts_created"] == 40
    integration.refresh_from_db()
    assert integration.last_sync_status == Integration.SyncStatus.SUCCEEDED


def test_a_worker_imports_its_connectors_at_start_up(monkeypatch):
    from celery import signals

    from connectors import registry

    monkeypatch.setattr(registry, "_cache", None)
    signals.worker_init.send(sender=None)
    assert registry._cache is not None and "demo" in registry._cache
