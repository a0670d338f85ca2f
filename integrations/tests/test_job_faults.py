"""Fault tests: a job never stays running or queued without a live worker, with real processes.

- The embedded default (SQLite, no broker: the sync runs in the web process): the gunicorn worker
  running a sync is killed with SIGKILL; once its heartbeat is older than the limit, the next start
  fails the dead job as "worker lost" and the integration syncs again.
- With Redis as the broker, paused (SIGSTOP) while a sync is started: the start fails the job with a
  clear error within seconds instead of leaving it queued with no message; once Redis is back the
  tick, sent through the broker like beat sends it, syncs the integration on the worker.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest
from celery import Celery

from conftest import DEMO_CONFIG, ROOT, wait_for, wait_until_serving
from connectors.testing import free_port
from governance.models import Job
from governance.tokens import api_token_create

SETUP = """
from governance.models import User
from governance.tokens import api_token_create
from integrations import services
admin = User.objects.create(username="root", is_staff=True, is_superuser=True)
integration = services.integration_create(actor=admin, application="demo", name="Directory", connection_config=%s)
print(api_token_create(actor=admin, name="fault test")[1], integration.pk)
"""


@pytest.fixture
def embedded_portal(tmp_path):
    """The embedded default under ``tmp_path``: SQLite, no broker, in-process tasks; a 3-second heartbeat
    limit. Yields (env, run_manage, start_gunicorn); every process started is stopped at teardown."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="governance.test_settings", VAR_DIR=str(tmp_path), JOB_HEARTBEAT_LIMIT="3"
    )
    started: list[subprocess.Popen] = []

    def manage(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def gunicorn() -> tuple[str, subprocess.Popen]:
        port = free_port()
        log = tmp_path / "gunicorn.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "governance.wsgi", "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "--timeout", "600"],
            cwd=ROOT, env=env, stdout=log.open("a"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, proc, log)
        return url, proc

    yield env, manage, gunicorn
    for proc in started:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_sync_whose_web_worker_is_killed_is_failed_as_lost_and_the_integration_syncs_again(
    embedded_portal, tmp_path
):
    env, manage, gunicorn = embedded_portal
    manage("migrate", "--noinput", "-v", "0")
    config = {**DEMO_CONFIG, "users": 4000, "groups": 400, "memberships": 3}
    token, pk = manage("shell", "-v", "0", "-c", SETUP % json.dumps(config)).split()[-2:]
    url, master = gunicorn()
    headers = {"Authorization": f"Bearer {token}"}
    database = sqlite3.connect(f"file:{tmp_path / 'portal.sqlite3'}?mode=ro", uri=True, timeout=20)

    def sync_jobs() -> list[tuple[str, str, str]]:
        return database.execute(
            "SELECT id, status, error FROM governance_job WHERE kind = 'sync' ORDER BY created_at"
        ).fetchall()

    # The sync runs in the web worker (no broker): the request answers when it ends, or never.
    outcome: list = []

    def start_sync() -> None:
        try:
            outcome.append(
                httpx.post(f"{url}/api/integrations/{pk}/sync/", headers=headers, json={}, timeout=300)
            )
        except httpx.TransportError as exc:  # the worker died before it answered
            outcome.append(exc)

    killed_request = threading.Thread(target=start_sync, daemon=True)
    killed_request.start()
    wait_for(lambda: [j for j in sync_jobs() if j[1] == "running"], 60, "the sync to run")
    (dead_id, _, _) = sync_jobs()[0]
    wait_for(lambda: list(tmp_path.glob("jobs/*.beat")), 30, "the running job's heartbeat file")
    worker = int(subprocess.check_output(["pgrep", "-P", str(master.pid)]).split()[0])
    os.kill(worker, signal.SIGKILL)  # mid-sync: its transaction is lost, its job row says "running"
    killed_request.join(30)
    assert isinstance(outcome[0], httpx.TransportError)
    assert sync_jobs()[0][1] == "running"

    time.sleep(3.5)  # longer than JOB_HEARTBEAT_LIMIT: the dead job's heartbeat is too old now
    wait_until_serving(url, master, tmp_path / "gunicorn.log")  # gunicorn started a new worker
    response = httpx.post(f"{url}/api/integrations/{pk}/sync/", headers=headers, json={}, timeout=300)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "succeeded", response.json()
    jobs = sync_jobs()
    assert jobs[0][0] == dead_id and jobs[0][1] == "failed" and jobs[0][2].startswith("Worker lost")
    assert [status for _, status, _ in jobs[1:]] == ["succeeded"]
    accounts = database.execute(
        "SELECT count(*) FROM integrations_account WHERE integration_id = ?", [int(pk)]
    ).fetchone()[0]
    assert accounts == 4000
    database.close()


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_sync_started_while_redis_is_paused_fails_at_once_and_the_tick_syncs_it_later(
    private_redis, portal_process, web_server, make_integration, admin_user, tmp_path
):
    port, redis_proc = private_redis
    broker_url = f"redis://127.0.0.1:{port}/0"
    integration = make_integration(name="Directory")
    token = api_token_create(actor=admin_user, name="fault test")[1]
    env = {**os.environ, "CELERY_BROKER_URL": broker_url, "CELERY_BROKER_SOCKET_TIMEOUT": "2"}
    env.pop("CACHE_URL", None)
    worker = portal_process(
        "worker",
        ["celery", "-A", "governance", "worker", "-Q", "default", "--pool", "solo", "--concurrency", "1",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "INFO"],
        env,
    )  # fmt: skip
    url = web_server(env)

    os.kill(redis_proc.pid, signal.SIGSTOP)  # the broker stops answering
    response = httpx.post(
        f"{url}/api/integrations/{integration.pk}/sync/",
        headers={"Authorization": f"Bearer {token}"},
        json={},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == Job.Status.FAILED and not job.task_id
    assert job.error.startswith("Could not send the job to the workers: the message broker did not take it")
    assert response.json()["status"] == "failed"  # within the request's 60 s timeout
    assert not Job.objects.filter(status__in=["queued", "running"]).exists()  # nothing left waiting

    os.kill(redis_proc.pid, signal.SIGCONT)  # the broker is back: beat's next tick syncs the integration
    assert worker.poll() is None, (tmp_path / "worker.log").read_text()
    client = Celery("fault-test-beat", broker=broker_url, set_as_current=False)
    client.send_task("integrations.tick", queue="default")
    client.close()

    def synced():
        latest = (
            Job.objects.filter(kind="sync", integration_id=integration.pk).order_by("-created_at").first()
        )
        return latest is not None and latest.pk != job.pk and latest.is_finished and latest

    latest = wait_for(synced, 120, "the tick's sync to finish")
    assert latest.status == Job.Status.SUCCEEDED, (
        latest.error,
        (tmp_path / "worker.log").read_text()[-3000:],
    )
    assert latest.task_id
