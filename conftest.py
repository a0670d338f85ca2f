"""Fixtures shared by the suite. Django is imported lazily: the connector tests run without it."""

import os
import subprocess
import sys
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
    import httpx

    from connectors.testing import free_port

    def start(env: dict[str, str]) -> str:
        port = free_port()
        args = ["gunicorn", "governance.wsgi", "--bind", f"127.0.0.1:{port}",
                "--workers", "1", "--threads", "4", "--worker-class", "gthread"]  # fmt: skip
        proc = portal_process(f"gunicorn-{port}", args, env)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / f"gunicorn-{port}.log").read_text()
            try:
                if httpx.get(f"{url}/login/", timeout=2).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{url} did not start"
            time.sleep(0.2)

    return start


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
