"""Fixtures shared by the suite. Django is imported lazily: the connector tests run without it."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent

DEMO_CONFIG = {
    "url": "https://demo.example.com",
    "connectionOption": "token",
    "apiToken": "demo",
    "users": 40,
    "groups": 10,
    "memberships": 2,
    "seed": 3,
}


def wait_for(condition, timeout: float = 120, what: str = "condition"):
    """Poll ``condition`` every 0.1 s until it returns something true (returned), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def wait_until_serving(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """Wait until the portal at ``url`` serves its sign-in page; fail with ``log`` if ``proc`` died."""
    import httpx

    def up():
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(f"{url}/login/", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(up, timeout, f"{url} to serve")


# The demo admin's password in tests: they run with DEBUG off, where the demo refuses "admin".
DEMO_ADMIN_PASSWORD = "demo-admin-test-pw"
DEMO_PEOPLE_PASSWORD = "demo-people-test-pw"


@pytest.fixture
def make_integration(db, admin_user):
    from integrations import services

    counter = iter(range(1, 10_000))

    def make(**fields):
        fields.setdefault("name", f"Integration {next(counter)}")
        fields.setdefault("application", "demo")
        fields.setdefault("connection_config", dict(DEMO_CONFIG))
        return services.integration_create(actor=admin_user, **fields)

    return make


@pytest.fixture
def portal_process(transactional_db, tmp_path):
    """Start processes of the portal (``python -m celery worker``, ``python -m gunicorn``...) on the test
    database: ``start(name, args, env)`` runs ``python -m <args>`` in the repository with ``env`` plus the
    test settings and database, its output in ``tmp_path/<name>.log``. All are stopped at teardown."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail("tests of portal processes need DATABASE_URL pointing at PostgreSQL")
    s = connection.settings_dict
    database_url = f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
    started = []

    def start(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        env = {**env, "DJANGO_SETTINGS_MODULE": "governance.test_settings", "DATABASE_URL": database_url}
        log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed at teardown
        proc = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        started.append((proc, log))
        return proc

    yield start
    for proc, log in started:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def web_server(portal_process, tmp_path):
    """``start(env) -> base URL``: a gunicorn server of the portal on the test database (see portal_process),
    with ``env`` as its whole environment besides the test settings; waits until it serves the sign-in page."""
    from connectors.testing import free_port

    def start(env: dict[str, str]) -> str:
        port = free_port()
        args = ["gunicorn", "governance.wsgi", "--bind", f"127.0.0.1:{port}",
                "--workers", "1", "--threads", "4", "--worker-class", "gthread"]  # fmt: skip
        proc = portal_process(f"gunicorn-{port}", args, env)
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, proc, tmp_path / f"gunicorn-{port}.log")
        return url

    return start


@pytest.fixture
def private_redis():
    """``(port, process)`` of a redis-server of this test's own, which the test may stop or pause (SIGSTOP)."""
    import redis

    from connectors.testing import free_port, stop_process

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    folder = Path(tempfile.mkdtemp(prefix="gov-cache-"))
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--daemonize", "no", "--logfile", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis(port=port).ping()
            break
        except redis.ConnectionError:
            assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
    yield port, proc
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
    stop_process(proc)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def integration(make_integration):
    return make_integration(name="Directory")


@pytest.fixture
def resource(integration):
    from integrations.models import Resource

    return Resource.objects.create(integration=integration, external_id="db-1", name="orders")


@pytest.fixture
def role(resource):
    from integrations.models import Role

    return Role.objects.create(resource=resource, external_id="db-1-connect", name="CONNECT")


@pytest.fixture
def workflow(db):
    from integrations.models import ApprovalWorkflow

    return ApprovalWorkflow.objects.create(name="Manager approval")


# -- browser tests: Debian's Chromium driven by Playwright ----------------------------------------
# Playwright's sync API runs an event loop in the test thread; Django's ORM must still be usable there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (scripts/services.sh does)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}
