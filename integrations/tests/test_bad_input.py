"""Bad input answers 400 (the API's error shape on the API, a page on the screens), never 500; tables and
API lists page within bounds; CSV exports never start a formula; ``next`` never leaves the site; the screens
find what the API finds (404 for what the user may not see)."""

from __future__ import annotations

import base64
import csv
import io
import json

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from rest_framework.test import APIClient

from access import services as ar
from access.models import AccessRequest
from governance import audit
from governance.tokens import api_token_create
from integrations import services
from integrations.models import Permission, Resource, Role
from integrations.services.workflows import workflow_create

pytestmark = pytest.mark.django_db


def deep(levels: int, inner: str = "1") -> str:
    return "[" * levels + inner + "]" * levels


def assert_api_error(response, status: int = 400):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "fields"} and error["message"]
    return error


@pytest.fixture
def screens(admin_user):
    client = Client(raise_request_exception=False)  # a 500 is an answer to assert on, not an exception
    client.force_login(admin_user)
    return client


@pytest.fixture
def api(admin_user):
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(actor=admin_user, name='t')[1]}")
    return client


@pytest.fixture
def many(integration, admin_user):
    """30 resources with a role each, 30 holders of the first role and 60 audit events."""
    resources = [
        Resource.objects.create(integration=integration, external_id=f"r{i:02}", name=f"db-{i:02}")
        for i in range(30)
    ]
    roles = [
        Role.objects.create(resource=r, external_id=f"{r.external_id}-read", name="read") for r in resources
    ]
    from integrations.models import Account

    for i in range(30):
        account = Account.objects.create(integration=integration, external_id=f"a{i}", identity=f"a{i}")
        Permission.objects.create(account=account, role=roles[0])
    for i in range(60):
        audit.record("test.event", object_repr=f"event {i}", integration_id=integration.pk, actor=admin_user)
    return resources, roles


# -- one page-size rule ---------------------------------------------------------------------------------------


def _tables(integration, roles):
    """The tables of the screens: (url, context name of the table, its default page size)."""
    return [
        ("/integrations/", "table", 25),
        ("/resources/", "table", 25),
        ("/roles/", "table", 25),
        ("/bulk/?target=roles", "table", 25),
        ("/audit/?x=1", "table", 50),
        (f"/integrations/{integration.pk}/?x=1", "resource_table", 10),
        (f"/roles/{roles[0].pk}/?x=1", "holders", 25),
    ]


@pytest.mark.parametrize("bad", ["-1", "0", "abc", "²", "1e3", "1000000", "501", "99999999999999999999999"])
def test_every_table_falls_back_to_its_default_page_size(screens, integration, many, bad):
    for url, name, default in _tables(integration, many[1]):
        sep = "&" if "?" in url else "?"
        response = screens.get(f"{url}{sep}per_page={bad}")
        assert response.status_code == 200, (url, response.status_code)
        table = response.context[name]
        assert table.paginator.per_page == default, url
        assert len(table.page.object_list) == min(default, table.paginator.count), url


def test_every_table_takes_a_page_size_up_to_500(screens, integration, many):
    for url, name, _ in _tables(integration, many[1]):
        sep = "&" if "?" in url else "?"
        for size in (3, 500):
            table = screens.get(f"{url}{sep}per_page={size}").context[name]
            assert table.paginator.per_page == size, url
        # A page past the end shows the last; one that is not a number, the first.
        assert screens.get(f"{url}{sep}per_page=3&page=99999999999999999999").status_code == 200, url
        assert screens.get(f"{url}{sep}per_page=3&page=-1").status_code == 200, url
        assert screens.get(f"{url}{sep}per_page=3&page=x").context[name].page.number == 1, url


@pytest.mark.parametrize("bad", ["²", "abc", "-1", "9" * 30])
def test_the_role_picker_ignores_an_integration_that_is_no_id(screens, integration, role, bad):
    response = screens.get(f"/roles/options?integration={bad}&q={role.name}")
    assert response.status_code == 200 and f'value="{role.pk}"' in response.content.decode()


def test_the_api_page_size_follows_the_same_rule(api, many):
    for size, expected in (("7", 7), ("1000", 30), ("0", 30), ("-1", 30), ("abc", 30), ("1001", 30)):
        response = api.get(f"/api/roles/?page_size={size}")
        assert response.status_code == 200, size
        assert len(response.json()["results"]) == expected, size
    from governance.models import AuditEvent

    assert AuditEvent.objects.count() > 100
    for size in ("1000000", "-5"):
        assert len(api.get(f"/api/audit-events/?page_size={size}").json()["results"]) == 100  # the default


# -- CSV formula injection ------------------------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://evil.example")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def _cells(content: bytes) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(content.decode())) for cell in row]


def test_csv_exports_never_start_a_formula(screens, api, integration, admin_user, django_user_model):
    actor = django_user_model.objects.create(username="=cmd|' /C calc'!A0", is_staff=True)
    for text in FORMULAS:
        audit.record("test.formula", object_repr=text, integration_id=integration.pk, actor=actor)
    event = audit.record("test.formula", object_repr="=1+1", integration_id=integration.pk, actor=actor)
    screen = b"".join(screens.get("/audit/export.csv?action=test.formula").streaming_content)
    listed = b"".join(api.get("/api/audit-events/?format=csv&action=test.formula").streaming_content)
    one = api.get(f"/api/audit-events/{event.pk}/?format=csv").content
    for content in (screen, listed, one):
        cells = _cells(content)
        assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))], cells
        assert "'=cmd|' /C calc'!A0" in cells or "'=1+1" in cells
    for text in FORMULAS:
        assert "'" + text in _cells(screen) and "'" + text in _cells(listed)


# -- malformed input: 400, never 500 --------------------------------------------------------------------------


def test_malformed_json_answers_400_in_the_api_error_shape(api, integration, admin_user):
    pk = integration.pk
    patch = {"content_type": "application/json-patch+json"}
    cases = [
        ("post", "/api/rules/", deep(5000), {}),
        ("patch", f"/api/integrations/{pk}/", deep(5000), {}),
        ("post", "/api/access-requests/", deep(5000), {}),
        ("patch", f"/api/v3/sources/{pk}", '[{"op": "replace", "path": "/name", "value": ' + deep(500) + "}]", patch),
        ("patch", f"/v3/sources/{pk}", '[{"op": "replace", "path": "/name", "value": "a\\u0000b"}]', patch),
        ("patch", f"/api/integrations/{pk}/", '{"connection_config": {"url": ' + deep(900) + "}}", {}),
        ("patch", f"/api/integrations/{pk}/", '{"connection_config": {"apiToken": "a\\u0000"}}', {}),
        ("patch", f"/api/integrations/{pk}/", '{"connection_config": {"a\\u0000": "x"}}', {}),
        ("post", "/api/rules/", json.dumps({"name": "n", "target": "roles", "actions": {"requestable": True},
                                            "conditions": [{"field": "name", "op": "equals", "value": "a\x00"}]}), {}),
    ]  # fmt: skip
    for method, url, body, kwargs in cases:
        response = getattr(api, method)(url, data=body, **{"content_type": "application/json", **kwargs})
        assert assert_api_error(response)["code"] == "parse_error", (url, body[:80])
    integration.refresh_from_db()
    assert integration.name == "Directory"  # nothing half-written
    # Tokens are created from a signed-in session only (a token answers 403 before its body is read).
    session = APIClient(raise_request_exception=False)
    session.force_login(admin_user)
    response = session.post("/api/tokens/", data="{" * 5000, content_type="application/json")
    assert assert_api_error(response)["code"] == "parse_error"


@pytest.mark.parametrize(
    "body",
    [
        {"conditions": [{"field": "integration", "op": "is", "value": "²"}]},
        {"conditions": [{"field": ["integration"], "op": "is", "value": 1}]},
        {"conditions": [{"field": "owner", "op": "is", "value": {"id": 1}}]},
        {"actions": {"owner": [1]}},
        {"actions": {"owner": "²"}},
        {"actions": {"maintainers": 5}},
        {"actions": {"maintainers": ["²"]}},
        {"actions": {"workflow": {}}},
        {"actions": {"tags": 5}},
        {"actions": {"tags": [{}]}},
        {"actions": {"allowed_durations": [[1]]}},
    ],
)
def test_malformed_rules_answer_400(api, body):
    rule = {"name": "Fuzzed", "target": "resources", "actions": {"requestable": True}, **body}
    assert_api_error(api.post("/api/rules/", rule, format="json"))


def test_crafted_cursors_answer_400(api, many):
    for raw in (b"p=abc", b"p=", b"p=2026-99-99", b"p=\x00", b"o=-1", b"r=x", b"\xff\xfe"):
        cursor = base64.b64encode(raw).decode()
        for endpoint in ("roles", "audit-events", "tokens", "jobs", "access-requests"):
            error = assert_api_error(api.get(f"/api/{endpoint}/?cursor={cursor}"))
            assert "cursor" in error["fields"], (endpoint, raw)
    assert assert_api_error(api.get("/api/roles/?cursor=%00"))["code"] == "bad_request"


@pytest.mark.parametrize("header", ["\x1c", "\xa0", " ", "\x1c\x1d", "Bearer", "Bearer \xa0"])
def test_a_malformed_authorization_header_answers_401_in_the_api_error_shape(header):
    client = APIClient(raise_request_exception=False)
    assert_api_error(client.get("/api/roles/", HTTP_AUTHORIZATION=header), 401)


def test_an_oversized_body_answers_400_in_the_api_error_shape(api, screens, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"name": "x" * 20_000, "target": "roles"})
    error = assert_api_error(api.post("/api/rules/", body, content_type="application/json"))
    assert error["code"] == "too_large" and "10,000 bytes" in error["message"]
    page = screens.post("/bulk/preview", {"target": "roles", "query": "x" * 20_000})
    assert page.status_code == 400 and b"larger than the 10,000 bytes" in page.content
    many = "&".join(f"f{i}=1" for i in range(1001))  # DATA_UPLOAD_MAX_NUMBER_FIELDS
    assert assert_api_error(api.get(f"/api/roles/?{many}"))["code"] == "too_many_fields"
    assert screens.get(f"/roles/?{many}").status_code == 400


def test_nul_characters_in_query_strings_and_forms_answer_400(screens, api, role, integration):
    page = screens.get("/request/?q=a%00b")
    assert page.status_code == 400 and b"NUL character" in page.content and b"navbar" in page.content
    assert screens.get("/roles/?q=%00").status_code == 400
    assert screens.post(f"/integrations/{integration.pk}/settings", {"name": "a\x00"}).status_code == 400
    rule = {"name": "r", "target": "roles", "cond_field": "name", "cond_op": "equals", "cond_value": "\x00"}
    assert screens.post("/rules/add/", rule).status_code == 400
    assert_api_error(api.get("/api/roles/?search=%00"))
    assert_api_error(api.get("/api/roles/?%00=1"))


def test_malformed_screen_input_answers_400_or_a_toast(screens, resource, admin_user):
    preview = screens.post(
        "/bulk/preview", {"target": "roles", "ids": ["²"], "scope": "selected", "c-requestable": "true"}
    )
    assert preview.status_code == 400 and b"No objects are selected" in preview.content
    for changes in ({"owner": [1]}, {"maintainers": 5}, {"workflow": {}}, {"tags": 1}, deep(900)):
        post = {"target": "resources", "ids": [str(resource.pk)], "scope": "selected"}
        text = changes if isinstance(changes, str) else json.dumps(changes)
        response = screens.post("/bulk/apply", {**post, "changes": text})
        assert response.status_code == 302, changes
        assert {m.level_tag for m in get_messages(response.wsgi_request)} == {"error"}, changes
    resource.refresh_from_db()
    assert resource.owner_id is None and resource.workflow_id is None and not resource.maintainers.exists()
    form = {
        "name": "Bad",
        "target": "resources",
        "cond_field": "integration",
        "cond_op": "is",
        "cond_key": "",
        "cond_value": "²",
    }
    page = screens.post(
        "/rules/add/",
        {
            **form,
            "match": "all",
            "scope": "new_only",
            "position": "1",
            "c-set_requestable": "on",
            "c-requestable": "true",
        },
    )
    assert page.status_code == 400 and b"unknown integration" in page.content


def test_json_typed_into_a_screen_is_bounded(screens, integration):
    for text in (deep(900), '{"url": "a\\u0000"}', deep(5000)):
        page = screens.post(f"/integrations/{integration.pk}/connection", {"config": text})
        assert page.status_code == 400 and b"Invalid connection JSON" in page.content


# -- next: this site only -------------------------------------------------------------------------------------


@pytest.fixture
def pending(integration, role, admin_user, django_user_model):
    """A pending request of alice for ``role``, waiting for the admin; and bob, who has nothing to do with it."""
    workflow = workflow_create(
        actor=admin_user, name="Admin", steps=[{"approvers": [{"kind": "user", "user": admin_user}]}]
    )
    services.integration_update(actor=admin_user, integration=integration, default_workflow=workflow)
    alice = django_user_model.objects.create_user("alice", password="pw")
    bob = django_user_model.objects.create_user("bob", password="pw")
    access = ar.access_request_create(actor=alice, role=role, duration="1d", justification="reporting")
    return access, alice, bob


@pytest.mark.parametrize("action", ["approve", "deny", "cancel", "end", "retry"])
@pytest.mark.parametrize(
    "target",
    ["https://evil.example", "//evil.example", "/\\evil.example", "javascript:alert(1)", "foo", "http:/evil"],
)
def test_request_actions_never_redirect_off_the_site(screens, pending, action, target):
    access = pending[0]
    response = screens.post(f"/requests/{access.pk}/{action}", {"next": target})
    assert response.status_code == 302 and response["Location"] == f"/requests/{access.pk}/", target


def test_request_actions_follow_a_path_of_the_site(screens, pending):
    response = screens.post(f"/requests/{pending[0].pk}/deny", {"next": "/approvals/?x=1"})
    assert response["Location"] == "/approvals/?x=1"


# -- the screens see what the API sees ------------------------------------------------------------------------


def test_a_role_that_is_not_requestable_is_404_to_who_may_not_request_it(
    client, pending, role, django_user_model
):
    _, alice, bob = pending
    role.description = "Secret plans of the finance team"
    role.save()
    client.force_login(bob)
    assert client.get(f"/request/{role.pk}/").status_code == 200  # requestable: the catalogue's
    Role.objects.filter(pk=role.pk).update(requestable=False)
    for response in (
        client.get(f"/request/{role.pk}/"),
        client.post(f"/request/{role.pk}/", {"duration": "1d"}),
    ):
        assert response.status_code == 404 and b"Secret plans" not in response.content
    api = APIClient()
    api.force_authenticate(bob)
    assert (
        api.post(
            "/api/access-requests/", {"role": role.pk, "duration": "1d", "justification": "x"}
        ).status_code
        == 400
    )
    services.maintainer_add(actor=None, integration=role.integration, user=bob)  # now they manage it
    assert client.get(f"/request/{role.pk}/").status_code == 200


@pytest.mark.parametrize("action", ["approve", "deny", "cancel", "end", "retry"])
def test_a_request_the_user_may_not_see_is_404_on_every_action_without_a_toast(client, pending, action):
    access, _, bob = pending
    client.force_login(bob)
    response = client.post(f"/requests/{access.pk}/{action}", {"comment": "x"})
    assert response.status_code == 404
    assert list(get_messages(response.wsgi_request)) == []  # nothing about its status
    assert client.get(f"/requests/{access.pk}/").status_code == 404
    assert client.get("/requests/999999/").status_code == 404
    access.refresh_from_db()
    assert access.status == AccessRequest.Status.PENDING


def test_a_ticket_the_user_may_not_see_is_404(client, pending, admin_user, integration):
    access, _, bob = pending
    services.integration_update(actor=admin_user, integration=integration, read_only=True)
    ar.access_request_approve(actor=admin_user, request=access)
    ticket = ar.access_request_grant(request_id=access.pk).tickets.get()
    client.force_login(bob)
    response = client.post(f"/tickets/{ticket.pk}/close", {"note": "done"})
    assert response.status_code == 404 and list(get_messages(response.wsgi_request)) == []
    ticket.refresh_from_db()
    assert ticket.status == "open"


def test_json_typed_into_the_admin_is_bounded(screens, integration):
    url = f"/admin/integrations/integration/{integration.pk}/change/"
    form = {"name": integration.name, "connection_config": "{}", "connector_attributes": "{}"}
    for field in ("connection_config", "connector_attributes", "new_secrets"):
        for text in (deep(5000), '{"url": "a\\u0000"}'):
            page = screens.post(url, {**form, field: text})
            assert page.status_code == 200 and b"errornote" in page.content, (field, text[:20])


def test_the_approvals_list_is_bounded(screens, admin_user, role, django_user_model):
    alice = django_user_model.objects.create_user("alice")
    rows = AccessRequest.objects.bulk_create(
        AccessRequest(requester=alice, beneficiary=alice, role=role, integration=role.integration, duration="1d",
                      justification="x", status="pending")
        for _ in range(205)
    )  # fmt: skip
    AccessRequest.pending_approvers.through.objects.bulk_create(
        AccessRequest.pending_approvers.through(accessrequest_id=r.pk, user_id=admin_user.pk) for r in rows
    )
    page = screens.get("/approvals/")
    assert page.status_code == 200 and page.content.count(b'data-testid="approval-') == 200
    assert "the oldest 200 of 205" in page.content.decode()  # cut, and saying so
