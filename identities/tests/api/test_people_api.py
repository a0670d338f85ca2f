"""People over the API: the list (the screen's filters, cursor pages, sparse fields), a person's detail with
their accounts and live permissions and how each was granted, read-only, in the OpenAPI schema."""

import pytest
from rest_framework.test import APIClient

from access.models import AccessDecision, AccessRequest, RequestPermission
from governance.tokens import api_token_create
from identities import services
from identities.selectors import person_for
from integrations.models import Account, Permission, Resource, Role
from integrations.services import role_set_implied_roles

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(org):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(actor=org['admin'], name='t')[1]}")
    return client


def _names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["username"] for row in response.json()["results"]]


def test_the_list_filters_like_the_screen_and_pages_with_cursors(api, org, make_integration):
    source = make_integration(name="HR export")
    services.person_update(
        actor=org["admin"], person=person_for(org["alice"]), status="terminated", source=source
    )
    assert _names(api.get("/api/people/?department=Finance")) == ["boss", "alice"]  # by id
    assert _names(api.get("/api/people/?q=builder")) == ["bob"]
    assert _names(api.get(f"/api/people/?source={source.pk}")) == ["alice"]
    assert _names(api.get("/api/people/?status=terminated")) == ["alice"]
    assert _names(api.get("/api/people/?terminated_with_access=true")) == []
    first = api.get("/api/people/?page_size=2")
    body = first.json()
    assert len(body["results"]) == 2 and body["next"]
    rest = api.get(body["next"]).json()["results"]
    assert {r["id"] for r in body["results"]}.isdisjoint({r["id"] for r in rest})
    alice = next(r for r in api.get("/api/people/?q=alice").json()["results"])
    assert alice["manager"] == org["boss"].pk and alice["status_label"] == "Terminated"
    assert alice["source"] == source.pk and alice["name"] == "Alice Analyst"
    sparse = api.get("/api/people/?fields=id,username").json()["results"][0]
    assert set(sparse) == {"id", "username"}
    # Bad input is a 400 in the API's error shape, never a 500.
    for query in ("?terminated_with_access=perhaps", "?manager=abc", "?status=fired", "?cursor=zzz"):
        response = api.get(f"/api/people/{query}")
        assert response.status_code == 400 and response.json()["error"]["message"], query


def test_the_detail_has_accounts_and_live_permissions_with_their_provenance(api, org, make_integration):
    alice = org["alice"]
    integration = make_integration(name="Warehouse")
    resource = Resource.objects.create(integration=integration, external_id="wh", name="warehouse")
    analyst, reader, writer = (
        Role.objects.create(resource=resource, external_id=n, name=n) for n in ("analyst", "reader", "writer")
    )
    role_set_implied_roles(actor=org["admin"], role=analyst, implied=[reader])
    account = Account.objects.create(
        integration=integration, external_id="a", identity="alice-wh", user=alice
    )
    found = Permission.objects.create(account=account, role=analyst, source="external")
    implied = Permission.objects.create(account=account, role=reader, source="birthright")
    granted = Permission.objects.create(account=account, role=writer, source="portal")
    Permission.objects.create(account=account, role=writer, source="portal", ended_at="2026-01-01T00:00Z")
    request = AccessRequest.objects.create(
        requester=alice, beneficiary=alice, integration=integration, role=writer, duration="1d",
        justification="x", status="granted", account=account,
    )  # fmt: skip
    RequestPermission.objects.create(request=request, permission=granted)
    AccessDecision.objects.create(request=request, step=0, approver=org["boss"], approved=True)
    body = api.get(f"/api/people/{alice.pk}/").json()
    assert body["username"] == "alice" and body["accounts_total"] == 1 and body["permissions_total"] == 3
    assert [a["identity"] for a in body["accounts"]] == ["alice-wh"]
    how = {p["id"]: p["provenance"] for p in body["permissions"]}
    assert how[found.pk] == [{"kind": "external", "label": "found in the application", "url": ""}]
    assert how[implied.pk] == [
        {"kind": "birthright", "label": "birthright", "url": ""},
        {"kind": "implied", "label": "implied by warehouse · analyst", "url": f"/roles/{analyst.pk}/"},
    ]
    assert how[granted.pk] == [
        {
            "kind": "request",
            "label": f"granted by access request #{request.pk} (approved by Bea Boss (boss))",
            "url": f"/requests/{request.pk}/",
        }
    ]
    row = next(p for p in body["permissions"] if p["id"] == granted.pk)
    assert (row["role_name"], row["resource_name"], row["account_identity"]) == (
        "writer",
        "warehouse",
        "alice-wh",
    )
    # Her manager sees the same, without links to pages he may not open (the role's; the request's he decided).
    boss = APIClient()
    boss.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(actor=org['boss'], name='t')[1]}")
    how = {p["id"]: p["provenance"] for p in boss.get(f"/api/people/{alice.pk}/").json()["permissions"]}
    assert how[implied.pk][1]["url"] == "" and how[granted.pk][0]["url"] == f"/requests/{request.pk}/"
    # The detail's lists only when asked for: sparse fields.
    assert set(api.get(f"/api/people/{alice.pk}/?fields=id,permissions_total").json()) == {
        "id",
        "permissions_total",
    }


def test_people_are_read_only_over_the_api(api, org):
    alice = org["alice"]
    for method in ("post", "patch", "put", "delete"):
        url = "/api/people/" if method == "post" else f"/api/people/{alice.pk}/"
        response = getattr(api, method)(url, {"status": "terminated"}, format="json")
        assert response.status_code == 405, (method, response.status_code)
    assert person_for(alice).status == "active"


def test_the_schema_describes_the_people_endpoints(client):
    schema = client.get("/api/schema/?format=json").json()
    assert {"/api/people/", "/api/people/{id}/"} <= set(schema["paths"])
    detail = schema["paths"]["/api/people/{id}/"]["get"]
    assert set(detail) >= {"description", "responses"} and "provenance" in detail["description"]
    assert "post" not in schema["paths"]["/api/people/"]
    parameters = {p["name"] for p in schema["paths"]["/api/people/"]["get"]["parameters"]}
    assert {
        "q",
        "department",
        "manager",
        "status",
        "source",
        "terminated_with_access",
        "cursor",
    } <= parameters
