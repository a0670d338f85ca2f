"""The Accounts list, the account page and the uncorrelated accounts on the integration screens."""

import pytest

from governance.models import User
from integrations import services
from integrations.models import Account, Permission, Resource, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_integration, admin_user):
    make = User.objects.create_user
    olga, max_, member = (
        make("olga", "olga@example.com", "pw"),
        make("max", "max@example.com", "pw"),
        make("mo"),
    )
    directory = make_integration(name="Directory", owner=olga)
    services.maintainer_add(actor=admin_user, integration=directory, user=max_)
    accounts = {
        "linked": Account.objects.create(
            integration=directory, external_id="a", identity="a-linked", user=max_, link_source="correlation"
        ),
        "free": Account.objects.create(
            integration=directory, external_id="b", identity="b-free", email="b@example.com"
        ),
        "removed": Account.objects.create(
            integration=directory, external_id="c", identity="c-removed", removed_at="2024-01-01T00:00Z"
        ),
        "svc": Account.objects.create(
            integration=directory, external_id="d", identity="svc", service_account=True, owner=olga
        ),
    }
    resource = Resource.objects.create(integration=directory, external_id="db", name="db")
    roles = Role.objects.bulk_create(
        Role(integration=directory, resource=resource, external_id=f"r{n:02}", name=f"role {n:02}")
        for n in range(60)
    )
    Permission.objects.bulk_create(
        Permission(integration=directory, account=accounts["free"], role=r) for r in roles
    )
    other = make_integration(name="Other")
    theirs = Account.objects.create(integration=other, external_id="t", identity="theirs")
    return {"olga": olga, "max": max_, "member": member, "directory": directory, "theirs": theirs, **accounts}


def signed_in(client, user):
    client.force_login(user)
    return client


def identities(page) -> list[str]:
    return [row.record.identity for row in page.context["table"].rows]


def test_the_accounts_list_filters_who_holds_them(client, world, admin_user):
    client = signed_in(client, admin_user)
    d = world["directory"].pk
    assert identities(client.get(f"/accounts/?integration={d}")) == ["a-linked", "b-free", "c-removed", "svc"]
    assert identities(client.get(f"/accounts/?integration={d}&correlated=false&removed=false")) == ["b-free"]
    assert identities(client.get(f"/accounts/?integration={d}&correlated=true")) == ["a-linked", "svc"]
    assert identities(client.get("/accounts/?service_account=true")) == ["svc"]
    assert identities(client.get(f"/accounts/?user={world['max'].pk}")) == ["a-linked"]
    assert identities(client.get("/accounts/?q=FREE")) == ["b-free"]
    page = client.get(f"/accounts/?integration={d}").content.decode()
    assert "Uncorrelated" in page and "Service account" in page and "by a sync" in page
    assert 'href="/accounts/"' in page  # in the left navigation


def test_the_integrations_count_their_uncorrelated_accounts(client, world, admin_user):
    client = signed_in(client, admin_user)
    d = world["directory"]
    url = f"/accounts/?integration={d.pk}&amp;correlated=false&amp;removed=false"
    listed = client.get("/integrations/")
    assert {r.record.name: r.record.uncorrelated_count for r in listed.context["table"].rows} == {
        "Directory": 1,
        "Other": 1,
    }
    assert f'href="{url}" data-testid="uncorrelated-{d.pk}"' in listed.content.decode()
    page = client.get(f"/integrations/{d.pk}/").content.decode()
    assert f'href="{url}" data-testid="uncorrelated-accounts">1 uncorrelated account<' in page


def test_the_account_page_shows_who_holds_it_and_its_permissions(client, world, admin_user):
    client = signed_in(client, admin_user)
    page = client.get(f"/accounts/{world['free'].pk}/")
    html = page.content.decode()
    assert page.status_code == 200 and "b-free" in html and "Not linked" in html
    assert len(page.context["permissions"]) == 50 and page.context["permissions_total"] == 60
    assert "The first 50 of 60" in html and "role 00" in html and "role 59" not in html
    linked = client.get(f"/accounts/{world['linked'].pk}/").content.decode()
    assert "Linked by a sync (same email, or its identity source)" in linked
    assert "a sync will follow the application's data" in linked


def test_a_manager_links_an_account_and_the_page_says_so(client, world):
    client = signed_in(client, world["olga"])
    free = world["free"]
    response = client.post(f"/accounts/{free.pk}/link", {"user": world["max"].pk})
    assert response.status_code == 302 and response.url == f"/accounts/{free.pk}/#link"
    free.refresh_from_db()
    assert (free.user, free.link_source) == (world["max"], "hand")
    page = client.get(response.url).content.decode()
    assert "b-free is now held by max" in page and "Set by hand" in page and "account.linked" in page
    assert client.get("/integrations/").context["table"].rows[0].record.uncorrelated_count == 0
    response = client.post(f"/accounts/{free.pk}/link", {"user": ""})
    free.refresh_from_db()
    assert response.status_code == 302 and (free.user, free.link_source) == (None, "hand")


def test_linking_to_oneself_is_refused_on_the_form(client, world):
    client = signed_in(client, world["max"])
    free = world["free"]
    page = client.post(f"/accounts/{free.pk}/link", {"user": world["max"].pk})
    assert page.status_code == 403
    assert "Nobody links an account to themselves" in page.content.decode()
    assert page.context["link_form"].errors  # the form again, with the reason
    page = client.post(f"/accounts/{free.pk}/service-account", {"owner": world["max"].pk})
    assert page.status_code == 403 and "owner of a service account" in page.content.decode()
    free.refresh_from_db()
    assert (free.user, free.link_source, free.service_account) == (None, "", False)


def test_a_managers_own_account_has_no_forms(client, world):
    client = signed_in(client, world["max"])
    page = client.get(f"/accounts/{world['linked'].pk}/").content.decode()
    assert "Nobody changes who holds their own account" in page
    assert f'action="/accounts/{world["linked"].pk}/link"' not in page
    response = client.post(f"/accounts/{world['linked'].pk}/service-account", {"owner": world["olga"].pk})
    assert response.status_code == 403


def test_a_service_account_is_marked_and_given_back(client, world):
    client = signed_in(client, world["max"])
    free = world["free"]
    assert client.post(f"/accounts/{free.pk}/service-account", {"owner": world["olga"].pk}).status_code == 302
    free.refresh_from_db()
    assert (free.service_account, free.owner, free.user, free.link_source) == (
        True,
        world["olga"],
        None,
        "hand",
    )
    page = client.get(f"/accounts/{free.pk}/").content.decode()
    assert "Nobody: a service account" in page and "Answered for by olga" in page
    refused = client.post(f"/accounts/{free.pk}/link", {"user": world["olga"].pk})
    assert refused.status_code == 400 and "make it a personal account first" in refused.content.decode()
    assert client.post(f"/accounts/{free.pk}/service-account", {"owner": ""}).status_code == 302
    free.refresh_from_db()
    assert (free.service_account, free.owner, free.link_source) == (False, None, "")


def test_who_sees_which_account(client, world):
    theirs, free = world["theirs"], world["free"]
    client = signed_in(client, world["max"])
    assert client.get(f"/accounts/{theirs.pk}/").status_code == 404
    assert client.post(f"/accounts/{theirs.pk}/link", {"user": world["olga"].pk}).status_code == 404
    assert identities(client.get("/accounts/")) == ["a-linked", "b-free", "c-removed", "svc"]
    client = signed_in(client, world["member"])
    assert client.get("/accounts/").status_code == 403
    assert client.get(f"/accounts/{free.pk}/").status_code == 403
    assert client.post(f"/accounts/{free.pk}/link", {"user": world["olga"].pk}).status_code == 403
    assert client.get("/accounts/99999999/").status_code == 403  # manages nothing: 403 before 404
    client = signed_in(client, world["olga"])
    assert client.get("/accounts/99999999/").status_code == 404
    free.refresh_from_db()
    assert free.user is None
