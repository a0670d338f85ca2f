import pytest

from integrations import services
from integrations.models import ApprovalWorkflow, Resource, Role

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
    return Resource.objects.create(integration=integration, external_id="db-1", name="orders")


@pytest.fixture
def role(resource):
    return Role.objects.create(resource=resource, external_id="db-1-connect", name="CONNECT")


@pytest.fixture
def workflow(db):
    return ApprovalWorkflow.objects.create(name="Manager approval")
