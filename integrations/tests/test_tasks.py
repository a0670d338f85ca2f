"""Tasks through a real Celery worker process on the real Redis broker and PostgreSQL."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.db import connection

from integrations.models import Agent, Integration
from integrations.tasks import queue_for, sync_integration_task, sync_now

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def broker():
    redis.Redis.from_url(REDIS_URL).ping()  # a missing Redis is a failure, not a skip
    client = Celery("governance-test-client", broker=REDIS_URL)
    client.conf.update(task_serializer="json", accept_content=["json"])
    yield client
    client.close()


@pytest.fixture
def worker(broker, transactional_db):
    if connection.vendor != "postgresql":
        pytest.fail("the worker test needs DATABASE_URL pointing at PostgreSQL")
    s = connection.settings_dict
    agent = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "governance.test_settings",
        "DATABASE_URL": f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}",
        "CELERY_BROKER_URL": REDIS_URL,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "governance", "worker", "-Q", f"agent.{agent}",
         "--pool", "solo", "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    yield agent, proc
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_sync_runs_on_the_agents_worker(broker, worker, make_integration):
    agent_name, proc = worker
    integration = make_integration(name="Directory", agent=Agent.objects.create(name=agent_name))
    assert queue_for(integration) == f"agent.{agent_name}"
    # What sync_now sends, sent through the real broker.
    broker.send_task(sync_integration_task.name, args=[integration.pk, True], queue=queue_for(integration))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        integration.refresh_from_db()
        if integration.last_sync_status != Integration.SyncStatus.NEVER:
            break
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    assert integration.last_sync_status == Integration.SyncStatus.SUCCEEDED, integration.last_sync_error
    assert integration.resources.count() == 10  # DEMO_CONFIG has 10 groups
    assert integration.accounts.count() == 40


def test_agent_integrations_route_to_their_queue(db, make_integration):
    integration = make_integration()
    assert queue_for(integration) == "default"
    integration.agent = Agent.objects.create(name="eu-west")
    assert queue_for(integration) == "agent.eu-west"


def test_without_a_broker_sync_now_runs_in_process(db, make_integration, settings):
    assert settings.CELERY_TASK_ALWAYS_EAGER  # no CELERY_BROKER_URL in the test settings
    integration = make_integration()
    result = sync_now(integration, full=True)
    assert result.get()["accounts_created"] == 40
    integration.refresh_from_db()
    assert integration.last_sync_status == Integration.SyncStatus.SUCCEEDED
