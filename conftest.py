"""Fixtures shared by the suite. Django is imported lazily: the connector tests run without it."""

import os
from pathlib import Path

import pytest

DEMO_CONFIG = {
    "url": "https://demo.example.com",
    "connectionOption": "token",
    "apiToken": "demo",
    "users": 40,
    "groups": 10,
    "memberships": 2,
    "seed": 3,
}


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
