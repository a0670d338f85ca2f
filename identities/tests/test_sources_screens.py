"""The identity source screens: admins set up a source from the account schema's attributes, apply it,
and confirm or discard a held run; anybody else gets 403."""

from __future__ import annotations

from pathlib import Path

from django.test import Client

from governance.models import User
from identities.models import IdentitySource, Person

from .test_sources import HR_MAPPING


def signed_in(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def form_data(**extra) -> dict:
    data = {f"map_{f}": a for f, a in HR_MAPPING.items()}
    data.update(position=1, manager_key="employee_id", terminated_values="terminated, T", leave_values="",
                leaver_limit_percent=10, enabled="on")  # fmt: skip
    return {**data, **extra}


def test_an_admin_sets_up_applies_and_decides(hr, admin_user):
    web = signed_in(admin_user)
    integration_page = web.get(f"/integrations/{hr.pk}/").content.decode()
    assert (
        f'href="/identity-sources/{hr.pk}/"' in integration_page
        and "Make an identity source" in integration_page
    )
    page = web.get(f"/identity-sources/{hr.pk}/")
    assert page.status_code == 200 and b'<option value="managerId">' in page.content
    r = web.post(f"/identity-sources/{hr.pk}/", form_data(map_employee_id="", map_username=""))
    assert r.status_code == 200 and b"Map employee_id or username" in r.content
    r = web.post(f"/identity-sources/{hr.pk}/", form_data())
    assert r.status_code == 302
    source = IdentitySource.objects.get(integration=hr)
    assert source.mapping == HR_MAPPING and source.status_values == {"terminated": ["terminated", "T"]}
    assert "Identity source<" in web.get(f"/integrations/{hr.pk}/").content.decode()
    listing = web.get("/identity-sources/")
    assert b"HR" in listing.content and b"held since" not in listing.content

    from integrations.sync import sync_integration

    sync_integration(actor=admin_user, integration=hr, full=True)
    assert Person.objects.filter(source=hr).count() == 12
    path = Path(hr.connection_config["path"])
    path.write_text(path.read_text().splitlines()[0] + "\n")  # the header alone: everybody would leave
    r = web.post(f"/identity-sources/{hr.pk}/apply")  # what the last sync found: nothing changes
    assert r.status_code == 302 and Person.objects.filter(source=hr, status="active").count() == 10
    sync_integration(actor=admin_user, integration=hr, full=True)
    page = web.get(f"/identity-sources/{hr.pk}/")
    assert b'data-testid="pending-run"' in page.content and b"Confirm" in page.content
    assert b"held since" in web.get("/identity-sources/").content
    web.post(f"/identity-sources/{hr.pk}/discard")
    source.refresh_from_db()
    assert source.pending_since is None
    web.post(f"/identity-sources/{hr.pk}/apply")  # held again
    web.post(f"/identity-sources/{hr.pk}/confirm")
    assert Person.objects.filter(source=hr, status="active").count() == 0


def test_everybody_else_gets_403(hr, db):
    IdentitySource.objects.create(integration=hr, mapping=HR_MAPPING)
    web = signed_in(User.objects.create_user("plain", "plain@example.com", "pw"))
    for url in ("/identity-sources/", f"/identity-sources/{hr.pk}/"):
        assert web.get(url).status_code == 403
    for action in ("apply", "confirm", "discard"):
        assert web.post(f"/identity-sources/{hr.pk}/{action}").status_code == 403
    assert Client().get("/identity-sources/").status_code == 302  # to sign in
    # The integration's page (its owner opens it) does not link there, nor does the navigation.
    hr.owner = User.objects.get(username="plain")
    hr.save(update_fields=["owner"])
    page = web.get(f"/integrations/{hr.pk}/").content.decode()
    assert "/identity-sources/" not in page


def test_the_django_admin_edits_a_source_with_the_same_checks(hr, admin_user):
    source = IdentitySource.objects.create(integration=hr, mapping=HR_MAPPING)
    web = signed_in(admin_user)
    url = f"/admin/identities/identitysource/{source.pk}/change/"
    assert web.get(url).status_code == 200
    data = {"integration": hr.pk, "position": 3, "mapping": '{"employee_id": "nope"}', "manager_key": "employee_id",
            "status_values": "{}", "leaver_limit_percent": 10, "enabled": "on"}  # fmt: skip
    r = web.post(url, data)
    assert r.status_code == 200 and "have no attribute for: employee_id → nope" in r.content.decode()
    r = web.post(url, {**data, "mapping": '{"employee_id": "employeeId"}'})
    assert r.status_code == 302
    source.refresh_from_db()
    assert source.mapping == {"employee_id": "employeeId"} and source.position == 3
