"""The identity sources API: admins list, read, create, change and apply sources and decide a held run;
everybody else is refused; bad mappings answer 400 in the API's error shape."""

from __future__ import annotations

from rest_framework.test import APIClient

from governance.models import User
from identities.models import IdentitySource, Person

from ..test_sources import HR_MAPPING


def client(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def test_admins_create_apply_and_change_a_source(hr, admin_user):
    api = client(admin_user)
    r = api.post(
        "/api/identity-sources/", {"integration": hr.pk, "mapping": {"employee_id": "nope"}}, format="json"
    )
    assert r.status_code == 400 and "no attribute for: employee_id → nope" in r.content.decode()
    r = api.post("/api/identity-sources/", {"integration": hr.pk, "mapping": HR_MAPPING}, format="json")
    assert r.status_code == 201, r.content
    source_id = r.json()["id"]
    from integrations.sync import sync_integration

    sync_integration(actor=admin_user, integration=hr, full=True)
    assert Person.objects.filter(source=hr).count() == 12
    r = api.post(f"/api/identity-sources/{source_id}/apply/")
    assert r.status_code == 200 and r.json()["summary"]["created"] == 0
    r = api.patch(f"/api/identity-sources/{source_id}/", {"leaver_limit_percent": 50}, format="json")
    assert r.status_code == 200 and r.json()["leaver_limit_percent"] == 50
    assert [s["integration_name"] for s in api.get("/api/identity-sources/").json()["results"]] == ["HR"]
    r = api.post(f"/api/identity-sources/{source_id}/confirm/")
    assert r.status_code == 400 and "no held run" in r.content.decode()


def test_everybody_else_is_refused(hr, admin_user, db):
    source = IdentitySource.objects.create(integration=hr, mapping=HR_MAPPING)
    plain = client(User.objects.create_user("plain", "plain@example.com", "pw"))
    assert plain.get("/api/identity-sources/").status_code == 403
    assert plain.get(f"/api/identity-sources/{source.pk}/").status_code == 403
    assert plain.post(f"/api/identity-sources/{source.pk}/confirm/").status_code == 403
    assert (
        plain.post(
            "/api/identity-sources/", {"integration": hr.pk, "mapping": HR_MAPPING}, format="json"
        ).status_code
        == 403
    )
    assert APIClient().get("/api/identity-sources/").status_code in (401, 403)


def test_the_schema_describes_the_endpoint(admin_user):
    r = client(admin_user).get("/api/schema/")
    assert r.status_code == 200
    body = r.content.decode()
    assert "/api/identity-sources/{id}/confirm/" in body and "/api/identity-sources/{id}/discard/" in body
