"""The OpenAPI schema is valid, the docs are served locally, and no generated input makes a 500.

The schemathesis run generates requests from the schema for every operation (valid and
invalid bodies, parameters and ids) and sends them through the Django WSGI app as an admin
with a personal token; a fixed example budget keeps it well under two minutes.
"""

import json
import re

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error

from governance.tokens import api_token_create

pytestmark = pytest.mark.django_db


def _schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def test_schema_is_valid_openapi_3(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    validate(schema)
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in [
        "/api/integrations/",
        "/api/integrations/{id}/sync/",
        "/api/resources/",
        "/api/roles/",
        "/api/accounts/",
        "/api/permissions/",
        "/api/workflows/",
        "/api/jobs/{id}/cancel/",
        "/api/audit-events/",
        "/api/tokens/",
        "/api/rules/",
        "/api/v3/sources/{id}",
        "/api/access-requests/",
        "/api/access-requests/{id}/approve/",
        "/api/access-requests/{id}/deny/",
        "/api/access-requests/{id}/cancel/",
        "/api/access-requests/{id}/end/",
        "/api/access-tickets/",
        "/api/access-tickets/{id}/close/",
        "/api/people/",
        "/api/people/{id}/",
    ]:
        assert path in paths, path
    patch = paths["/api/v3/sources/{id}"]["patch"]
    assert list(patch["requestBody"]["content"]) == ["application/json-patch+json"]
    assert "/connectorAttributes/group.filterString" not in patch["description"]  # documented as <type>
    assert "/connectorAttributes/<type>.filterString" in patch["description"]
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_every_reference_of_the_schema_resolves():
    """A broken ``$ref`` makes schema-driven clients and tests skip the operation's body."""
    schema = _schema()
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(schema)))
    assert refs and not refs - set(schema["components"]["schemas"]), refs - set(
        schema["components"]["schemas"]
    )


def _bodies(operation, examples: int) -> list:
    """Bodies schemathesis generates for ``operation``."""
    bodies = []

    @settings(max_examples=examples, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy())
    def draw(case):
        bodies.append(case.body)

    draw()
    return bodies


def test_schemathesis_sends_a_body_to_every_operation_that_takes_one():
    """The generated run below exercises every operation, the JSON Patch of /v3/sources included."""
    with_body = {}
    for result in SCHEMA.exclude(path_regex=r".*/test-connection/$").get_all_operations():
        operation = result.ok()  # raises when an operation cannot be loaded
        if operation.body:
            with_body[operation.label] = operation
    assert "PATCH /api/v3/sources/{id}" in with_body
    for label, operation in with_body.items():
        assert any(isinstance(b, list | dict) and b for b in _bodies(operation, 10)), label
    patches = [op for body in _bodies(with_body["PATCH /api/v3/sources/{id}"], 30) for op in body or []]
    assert any(isinstance(op, dict) and {"op", "path"} <= set(op) for op in patches)


def test_schema_generates_without_warnings(tmp_path):
    """Every operation, parameter and enum is typed and named: drf-spectacular has nothing to guess."""
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert "/api/access-requests/{id}/approve/" in (tmp_path / "schema.yml").read_text()


def test_docs_use_local_assets(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html


SCHEMA = schemathesis.openapi.from_dict(_schema())
SCHEMA.app = get_wsgi_application()


@pytest.fixture
def admin_token(db, django_user_model, make_integration, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "100000/min", "user": "100000/min", "anon": "100000/min"},
    }
    cache.clear()
    # Requests run through the real WSGI handler inside the test's transaction: keep its
    # connection open across requests, as Django's test client does.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    admin = django_user_model.objects.create(username="fuzz-admin", is_staff=True, is_superuser=True)
    from governance.models import AuditEvent, Job
    from identities.models import IdentitySource
    from integrations.models import Account, ApprovalWorkflow, Permission, Resource, Role, Rule

    integration = make_integration(name="Fuzzed")
    resource = Resource.objects.create(integration=integration, external_id="r", name="r")
    role = Role.objects.create(resource=resource, external_id="r-m", name="member")
    account = Account.objects.create(integration=integration, external_id="a", identity="a")
    token, secret = api_token_create(actor=admin, name="schemathesis")
    other_token, _ = api_token_create(actor=admin, name="to revoke")
    # A request of someone else waiting for the admin, and a grant ticket of another one.
    from access import services as ar
    from integrations.services import integration_update
    from integrations.services.workflows import workflow_create

    requester = django_user_model.objects.create(username="fuzz-requester")
    workflow = workflow_create(
        actor=admin, name="Fuzz approval", steps=[{"approvers": [{"kind": "user", "user": admin}]}]
    )
    integration_update(actor=admin, integration=integration, read_only=True, default_workflow=workflow)
    waiting = ar.access_request_create(actor=requester, role=role, duration="1d", justification="fuzz")
    other_role = Role.objects.create(resource=resource, external_id="r-o", name="owner")
    approved = ar.access_request_create(actor=requester, role=other_role, duration="1d", justification="fuzz")
    ar.access_request_approve(actor=admin, request=approved)
    ticket = ar.access_request_grant(request_id=approved.pk).tickets.get()
    # Path ids point at real objects, so generated bodies reach the services, not only 404s.
    ids = {
        "integrations": integration.pk,
        "sources": integration.pk,
        "resources": resource.pk,
        "roles": role.pk,
        "accounts": account.pk,
        "permissions": Permission.objects.create(account=account, role=role).pk,
        "workflows": ApprovalWorkflow.objects.create(name="Fuzz workflow").pk,
        "rules": Rule.objects.create(name="Fuzz rule").pk,
        "jobs": Job.objects.create(kind="sync", integration_id=integration.pk).pk,
        "audit-events": AuditEvent.objects.order_by("-id").first().pk,
        "tokens": other_token.pk,
        "access-requests": waiting.pk,
        "access-tickets": ticket.pk,
        "people": requester.pk,
        "identity-sources": IdentitySource.objects.create(
            integration=integration, mapping={"username": "userName"}
        ).pk,
    }
    yield secret, ids
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.slow
@SCHEMA.exclude(path_regex=r".*/test-connection/$").parametrize()
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_on_generated_input(case, admin_token):
    secret, ids = admin_token
    if case.path_parameters and "id" in case.path_parameters:
        parts = case.path.strip("/").split("/")  # api/<collection>/{id}/... or api/v3/sources/{id}
        collection = parts[2] if parts[1] == "v3" else parts[1]
        case.path_parameters = {**case.path_parameters, "id": str(ids[collection])}
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {secret}"}
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
