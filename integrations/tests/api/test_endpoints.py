"""The REST API: who may call what, writes through the audited services, bad input, pages, CSV."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from governance.models import ApiToken, AuditEvent, Job
from governance.tokens import api_token_create
from integrations.models import ApprovalWorkflow, Integration, Maintainer, Resource

pytestmark = pytest.mark.django_db

INVENTORY = ["integrations", "resources", "roles", "accounts", "permissions"]
SINGULAR = {
    "integrations": "",
    "resources": "_resource",
    "roles": "_role",
    "accounts": "_account",
    "permissions": "_permission",
}


def _ids(response) -> set[int]:
    return {row["id"] for row in response.json()["results"]}


# -- the permission matrix --------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", INVENTORY)
@pytest.mark.parametrize(
    "who, status, sees",
    [
        ("admin", 200, {"mine", "theirs"}),
        ("owner", 200, {"mine"}),
        ("maintainer", 200, {"mine"}),
        ("other", 403, None),
        (None, 401, None),
    ],
)
def test_inventory_lists_by_role(client_for, world, endpoint, who, status, sees):
    response = client_for(who).get(f"/api/{endpoint}/")
    assert response.status_code == status, response.content
    if sees is None:
        assert set(response.json()) == {"error"}
        return
    assert _ids(response) == {world[k + SINGULAR[endpoint]].pk for k in sees}


@pytest.mark.parametrize("endpoint", INVENTORY)
@pytest.mark.parametrize(
    "who, mine, theirs",
    [
        ("admin", 200, 200),
        ("owner", 200, 404),
        ("maintainer", 200, 404),
        ("other", 403, 403),
        (None, 401, 401),
    ],
)
def test_inventory_details_by_role(client_for, world, endpoint, who, mine, theirs):
    client = client_for(who)
    suffix = SINGULAR[endpoint]
    assert client.get(f"/api/{endpoint}/{world['mine' + suffix].pk}/").status_code == mine
    response = client.get(f"/api/{endpoint}/{world['theirs' + suffix].pk}/")
    assert response.status_code == theirs
    if theirs == 404:  # same answer as an id that does not exist: existence does not leak
        missing = client.get(f"/api/{endpoint}/999999/")
        assert missing.status_code == 404 and missing.json() == response.json()
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "who, status", [("admin", 201), ("owner", 403), ("maintainer", 403), ("other", 403), (None, 401)]
)
def test_create_integration_admins_only(client_for, world, who, status):
    body = {
        "name": "New",
        "application": "demo",
        "connection_config": {"url": "https://x.example", "users": 3, "apiToken": "s3cr3t-x"},
    }
    response = client_for(who).post("/api/integrations/", body, format="json")
    assert response.status_code == status, response.content
    assert Integration.objects.filter(name="New").exists() == (status == 201)
    assert b"s3cr3t-x" not in response.content


@pytest.mark.django_db(transaction=True, databases=["default", "jobs"])
@pytest.mark.parametrize("who, status", [("admin", 202), ("owner", 403), ("maintainer", 403), ("other", 403)])
def test_delete_integration_admins_only(client_for, world, who, status, django_capture_on_commit_callbacks):
    """Deleting answers at once with the deletion job (202), which deletes the integration and its
    maintainers and writes one audit event with the counts."""
    pk = world["mine"].pk
    assert Maintainer.objects.filter(integration_id=pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(who).delete(f"/api/integrations/{pk}/")
    assert response.status_code == status
    assert Integration.objects.filter(pk=pk).exists() == (status != 202)
    if status == 202:
        assert response.json()["kind"] == "delete"
        job = Job.objects.get(pk=response.json()["id"])
        assert job.status == Job.Status.SUCCEEDED, job.error
        (event,) = AuditEvent.objects.filter(action="integration.delete", object_id=str(pk))
        assert event.details["counts"]["integrations.Maintainer"] >= 1
        assert not AuditEvent.objects.filter(
            action="maintainer.delete"
        ).exists()  # one summary, not a row each


@pytest.mark.parametrize(
    "who, mine, theirs", [("admin", 200, 200), ("owner", 200, 404), ("maintainer", 200, 404)]
)
def test_update_integration_scoped(client_for, world, who, mine, theirs):
    client = client_for(who)
    assert (
        client.patch(f"/api/integrations/{world['mine'].pk}/", {"read_only": True}, format="json").status_code
        == mine
    )
    assert (
        client.patch(
            f"/api/integrations/{world['theirs'].pk}/", {"read_only": True}, format="json"
        ).status_code
        == theirs
    )
    world["theirs"].refresh_from_db()
    assert world["theirs"].read_only is (theirs == 200)


@pytest.mark.parametrize(
    "bad",
    [
        "Bearer nonsense",
        "Bearer gov_deadbeef_" + "x" * 43,
        "Bearer",
        "Bearer a b",
    ],
)
def test_bad_tokens_are_401(world, bad):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bad)
    response = client.get("/api/integrations/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_expired_and_revoked_tokens_are_401(client_for, people, world, tokens):
    from rest_framework.test import APIClient

    _, expiring = api_token_create(
        actor=people["admin"], name="soon", expires_at=timezone.now() + timedelta(hours=1)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {expiring}")
    assert client.get("/api/integrations/").status_code == 200
    ApiToken.objects.filter(name="soon").update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get("/api/integrations/")
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]

    admin = client_for("admin")
    token_id = admin.get("/api/tokens/").json()["results"][-1]["id"]
    assert admin.delete(f"/api/tokens/{token_id}/").status_code == 204
    response = admin.get("/api/integrations/")
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]


def test_session_authentication_works_for_the_browser(client, people, world):
    client.force_login(people["owner"])
    response = client.get("/api/integrations/")
    assert response.status_code == 200 and _ids(response) == {world["mine"].pk}


# -- writes go through the services, audited --------------------------------------------------------------


def test_secrets_are_write_only_and_merged(client_for, world):
    client = client_for("owner")
    url = f"/api/integrations/{world['mine'].pk}/"
    before = client.get(url).json()
    assert before["connection_secrets"] == {"apiToken": "set", "password": "unset"}
    assert "apiToken" not in before["connection_config"]

    config = {"url": "https://demo.example.com", "users": 7, "apiToken": "", "password": "hunter2"}
    response = client.patch(url, {"connection_config": config}, format="json")
    assert response.status_code == 200, response.content
    assert b"hunter2" not in response.content and b'"apiToken":"demo"' not in response.content
    assert response.json()["connection_secrets"] == {"apiToken": "set", "password": "set"}
    world["mine"].refresh_from_db()
    assert world["mine"].connection_secrets == {
        "apiToken": "demo",
        "password": "hunter2",
    }  # empty kept the old one
    assert world["mine"].connection_config["users"] == 7
    event = AuditEvent.objects.filter(action="integration.update", object_id=str(world["mine"].pk)).first()
    assert event.actor.username == "owner"
    assert "hunter2" not in str(event.details)


def test_unknown_and_read_only_fields_are_refused_naming_them(client_for, world):
    url = f"/api/integrations/{world['mine'].pk}/"
    response = client_for("owner").patch(
        url, {"colour": "red", "application": "ldap", "read_only": True}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["fields"] == {"colour": ["Unknown field."], "application": ["This field is read-only."]}
    world["mine"].refresh_from_db()
    assert world["mine"].read_only is False  # nothing changed


@pytest.mark.parametrize(
    "body, field",
    [
        ({"read_only": "perhaps"}, "read_only"),
        ({"owner": 999999}, "owner"),
        ({"allowed_durations": "1h"}, "allowed_durations"),
        ({"connector_attributes": {"filterString": "name =="}}, "connector_attributes"),
        ({"connector_attributes": {"nope": 1}}, "connector_attributes"),
        ({"name": "Theirs"}, "name"),
        ({"connection_config": ["not", "an", "object"]}, "connection_config"),
    ],
)
def test_invalid_values_are_400_naming_the_field(client_for, world, body, field):
    response = client_for("owner").patch(f"/api/integrations/{world['mine'].pk}/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    world["mine"].refresh_from_db()
    assert world["mine"].name == "Mine" and world["mine"].connector_attributes == {}


def test_malformed_json_is_400(client_for, world):
    response = client_for("owner").generic(
        "PATCH", f"/api/integrations/{world['mine'].pk}/", b"{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_create_integration_audited_under_the_caller(client_for, world):
    body = {
        "name": "CRM",
        "application": "demo",
        "connection_config": {"url": "https://crm.example", "users": 2, "apiToken": "t"},
    }
    response = client_for("admin").post("/api/integrations/", body, format="json")
    assert response.status_code == 201
    assert AuditEvent.objects.get(action="integration.create", object_repr="CRM").actor_repr == "root"


def test_create_integration_with_unknown_application_is_400(client_for, world):
    response = client_for("admin").post(
        "/api/integrations/", {"name": "X", "application": "nope"}, format="json"
    )
    assert response.status_code == 400 and "application" in response.json()["error"]["fields"]
    assert not Integration.objects.filter(name="X").exists()


def test_resource_update_tags_and_owner(client_for, people, world):
    url = f"/api/resources/{world['mine_resource'].pk}/"
    response = client_for("maintainer").patch(
        url, {"description": "Orders", "tags": ["pci", "prod"]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["tags"] == ["pci", "prod"]
    resource = Resource.objects.get(pk=world["mine_resource"].pk)
    assert resource.description == "Orders"
    assert AuditEvent.objects.filter(action="resource.update", actor=people["maintainer"]).exists()
    # The owner is the integration owner's (or an admin's) to set, not a maintainer's.
    refused = client_for("maintainer").patch(url, {"owner": people["maintainer"].pk}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    response = client_for("owner").patch(url, {"owner": people["other"].pk}, format="json")
    assert response.status_code == 200 and response.json()["effective"]["owner"] == people["other"].pk
    # Read-only inventory fields are refused.
    response = client_for("maintainer").patch(url, {"external_id": "x"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["fields"] == {
        "external_id": ["This field is read-only."]
    }


def test_role_implies_scoped_to_visible_roles(client_for, world):
    from integrations.models import Role

    other = Role.objects.create(resource=world["mine_resource"], external_id="mine-db-write", name="write")
    url = f"/api/roles/{other.pk}/"
    response = client_for("owner").patch(url, {"implies": [world["mine_role"].pk]}, format="json")
    assert response.status_code == 200 and response.json()["implies"] == [world["mine_role"].pk]
    # A role the caller may not see is refused like one that does not exist.
    response = client_for("owner").patch(url, {"implies": [world["theirs_role"].pk]}, format="json")
    assert response.status_code == 400 and "implies" in response.json()["error"]["fields"]
    assert list(other.implies.all()) == [world["mine_role"]]


# -- workflows --------------------------------------------------------------------------------------------


def test_workflows_read_by_managers_written_by_admins(client_for, people, world):
    body = {"name": "Two steps", "steps": [{"mode": "any", "approvers": [{"kind": "manager"}]}]}
    assert client_for("owner").post("/api/workflows/", body, format="json").status_code == 403
    assert client_for("other").get("/api/workflows/").status_code == 403
    response = client_for("admin").post(
        "/api/workflows/",
        {
            "name": "Two steps",
            "steps": [
                {"mode": "any", "approvers": [{"kind": "manager"}]},
                {
                    "mode": "all",
                    "approvers": [{"kind": "user", "user": people["owner"].pk}, {"kind": "owner"}],
                },
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    wf = ApprovalWorkflow.objects.get(name="Two steps")
    assert [(s.position, s.mode, s.approvers.count()) for s in wf.steps.all()] == [
        (1, "any", 1),
        (2, "all", 2),
    ]
    listed = client_for("owner").get("/api/workflows/").json()["results"]
    assert [w["name"] for w in listed] == ["Two steps"]
    # Replace the steps whole.
    response = client_for("admin").patch(
        f"/api/workflows/{wf.pk}/", {"steps": [{"approvers": [{"kind": "automatic"}]}]}, format="json"
    )
    assert response.status_code == 200 and len(response.json()["steps"]) == 1
    # In use: refused, still there.
    world["mine"].default_workflow = wf
    world["mine"].save()
    response = client_for("admin").delete(f"/api/workflows/{wf.pk}/")
    assert response.status_code == 400 and ApprovalWorkflow.objects.filter(pk=wf.pk).exists()


def test_invalid_workflow_steps_are_400_and_nothing_written(client_for, world):
    response = client_for("admin").post(
        "/api/workflows/",
        {"name": "Broken", "steps": [{"mode": "some", "approvers": [{"kind": "user"}]}]},
        format="json",
    )
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert "steps.0.mode" in fields
    response = client_for("admin").post(
        "/api/workflows/", {"name": "Broken", "steps": [{"approvers": [{"kind": "user"}]}]}, format="json"
    )
    assert response.status_code == 400 and "steps.0.approvers.0.user" in response.json()["error"]["fields"]
    assert not ApprovalWorkflow.objects.filter(name="Broken").exists()


# -- jobs -------------------------------------------------------------------------------------------------


def test_sync_job_start_follow_cancel(client_for, world):
    owner = client_for("owner")
    response = owner.post(f"/api/integrations/{world['mine'].pk}/sync/", {"full": True}, format="json")
    assert response.status_code == 202, response.content
    job = response.json()
    assert (
        job["kind"] == "sync" and job["integration"] == world["mine"].pk and job["params"] == {"full": True}
    )
    assert owner.get(f"/api/jobs/{job['id']}/").json()["status"] == "queued"
    # A second start while one is queued is recorded as skipped.
    again = owner.post(f"/api/integrations/{world['mine'].pk}/sync/", {}, format="json").json()
    assert again["status"] == "skipped"
    response = owner.post(f"/api/jobs/{job['id']}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert Job.objects.get(pk=job["id"]).status == "cancelled"
    # Jobs of integrations the caller does not manage are not found.
    theirs = (
        client_for("admin").post(f"/api/integrations/{world['theirs'].pk}/sync/", {}, format="json").json()
    )
    assert owner.get(f"/api/jobs/{theirs['id']}/").status_code == 404
    assert owner.post(f"/api/jobs/{theirs['id']}/cancel/").status_code == 404
    assert Job.objects.get(pk=theirs["id"]).status == "queued"
    assert {j["id"] for j in owner.get("/api/jobs/").json()["results"]} == {job["id"], again["id"]}
    assert owner.get("/api/jobs/not-a-uuid/").status_code == 404


def test_sync_rejects_bad_input(client_for, world):
    response = client_for("owner").post(
        f"/api/integrations/{world['mine'].pk}/sync/", {"full": "sometimes", "x": 1}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"x"}
    assert not Job.objects.exists()


# -- the audit log ----------------------------------------------------------------------------------------


def test_audit_events_scoped_filtered_and_csv(client_for, world):
    owner = client_for("owner")
    events = owner.get("/api/audit-events/?page_size=1000").json()["results"]
    assert events and {e["integration"] for e in events} == {world["mine"].pk}
    only_roles = owner.get("/api/audit-events/?action=role.").json()["results"]
    assert only_roles and {e["action"] for e in only_roles} == {"role.create"}

    response = owner.get("/api/audit-events/?format=csv&action=role.")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.streaming
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["occurred_at", "actor", "action"]
    assert [r[2] for r in rows[1:]] == ["role.create"]

    response = owner.get("/api/audit-events/", HTTP_ACCEPT="text/csv")
    assert response.streaming
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 1 + len(events)
    assert client_for("other").get("/api/audit-events/?format=csv").status_code == 403
    assert owner.get("/api/audit-events/?since=yesterday").status_code == 400


# -- pages, sparse fieldsets, filters ---------------------------------------------------------------------


def test_cursor_pages_and_sparse_fields(client_for, world):
    for i in range(5):
        Resource.objects.create(integration=world["mine"], external_id=f"r{i}", name=f"r{i}")
    client = client_for("owner")
    seen = []
    url = "/api/resources/?page_size=2&fields=id,name"
    while url:
        page = client.get(url).json()
        assert all(set(row) == {"id", "name"} for row in page["results"])
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
    assert len(seen) == 6 and len(set(seen)) == 6
    response = client.get("/api/resources/?fields=id,colour")
    assert response.status_code == 400 and "colour" in response.json()["error"]["fields"]["fields"][0]
    for size in ("0", "-1", "abc", "1001", "1000000", "²"):  # the default page, as on the screens
        assert len(client.get(f"/api/resources/?page_size={size}").json()["results"]) == 6, size
    assert client.get("/api/resources/?cursor=garbage").status_code == 400


def test_lists_use_the_filtersets(client_for, world):
    client = client_for("admin")
    assert _ids(client.get("/api/resources/?q=theirs")) == {world["theirs_resource"].pk}
    assert _ids(client.get(f"/api/roles/?integration={world['mine'].pk}")) == {world["mine_role"].pk}
    assert _ids(client.get("/api/integrations/?application=demo")) == {world["mine"].pk, world["theirs"].pk}
    response = client.get("/api/permissions/?active=maybe")  # neither true nor false: refused, not ignored
    assert response.status_code == 400 and "active" in response.json()["error"]["fields"]
    assert client.get("/api/integrations/?read_only=perhaps").status_code == 400
    assert _ids(client.get("/api/integrations/?read_only=false")) == {world["mine"].pk, world["theirs"].pk}
    assert _ids(client.get("/api/integrations/?read_only=unknown")) == {world["mine"].pk, world["theirs"].pk}
    assert _ids(client.get("/api/permissions/?active=1")) == {
        world["mine_permission"].pk,
        world["theirs_permission"].pk,
    }
    assert client.get("/api/resources/?integration=abc").status_code == 400


def test_unknown_api_path_is_json_404(client_for):
    response = client_for("admin").get("/api/nothing-here/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# -- tokens -----------------------------------------------------------------------------------------------


def test_tokens_created_once_listed_without_secret_and_private(client_for, people, tokens):
    owner = client_for("owner")
    session = APIClient()  # tokens are created from a signed-in session (a token may not make tokens)
    session.force_login(people["owner"])
    response = session.post("/api/tokens/", {"name": "terraform"}, format="json")
    assert response.status_code == 201
    secret = response.json()["token"]
    assert secret.startswith("gov_" + response.json()["prefix"] + "_")
    row = ApiToken.objects.get(name="terraform")
    assert secret not in row.token_hash and len(row.token_hash) == 64
    listed = owner.get("/api/tokens/").json()["results"]
    assert {t["name"] for t in listed} == {"owner script", "terraform"}
    assert all(t["token"] is None for t in listed)
    # Another user's token: not found, not revocable.
    admin_token = ApiToken.objects.get(user=people["admin"])
    assert owner.get(f"/api/tokens/{admin_token.pk}/").status_code == 404
    assert owner.delete(f"/api/tokens/{admin_token.pk}/").status_code == 404
    assert ApiToken.objects.get(pk=admin_token.pk).revoked_at is None
    # Users who manage nothing still manage their own tokens.
    other = APIClient()
    other.force_login(people["other"])
    assert other.post("/api/tokens/", {"name": "mine"}, format="json").status_code == 201
    bad = session.post("/api/tokens/", {"name": "old", "expires_at": "2000-01-01T00:00:00Z"}, format="json")
    assert bad.status_code == 400 and "expires_at" in bad.json()["error"]["fields"]
    assert client_for(None).get("/api/tokens/").status_code == 401


# -- rate limits ------------------------------------------------------------------------------------------


def test_rate_limit_per_token_with_retry_after(client_for, settings, world):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "2/min", "user": "2/min", "anon": "2/min"},
    }
    owner = client_for("owner")
    assert [owner.get("/api/integrations/").status_code for _ in range(2)] == [200, 200]
    response = owner.get("/api/integrations/")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60
    # Another token has its own budget.
    assert client_for("maintainer").get("/api/integrations/").status_code == 200
