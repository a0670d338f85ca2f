"""Who holds an account, over the API: link, unlink, service accounts, their rule and their filters."""

from __future__ import annotations

import pytest

from governance.models import AuditEvent
from integrations.models import Account

pytestmark = pytest.mark.django_db


def link_url(account) -> str:
    return f"/api/accounts/{account.pk}/link/"


def service_url(account) -> str:
    return f"/api/accounts/{account.pk}/service-account/"


def test_a_manager_links_and_unlinks_an_account(client_for, people, world):
    account, other = world["mine_account"], people["other"]
    response = client_for("maintainer").post(link_url(account), {"user": other.pk}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["user"], body["link_source"], body["service_account"], body["owner"]) == (
        other.pk,
        "hand",
        False,
        None,
    )
    response = client_for("owner").post(link_url(account), {"user": None}, format="json")
    assert response.status_code == 200 and (response.json()["user"], response.json()["link_source"]) == (
        None,
        "hand",
    )
    assert list(
        AuditEvent.objects.filter(
            object_id=str(account.pk), action__in=["account.linked", "account.unlinked"]
        )
        .order_by("id")
        .values_list("action", "actor_id")
    ) == [("account.linked", people["maintainer"].pk), ("account.unlinked", people["owner"].pk)]


def test_a_manager_marks_a_service_account_and_gives_it_back(client_for, people, world):
    account = world["mine_account"]
    response = client_for("owner").post(
        service_url(account), {"owner": people["maintainer"].pk}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["service_account"], body["owner"], body["user"], body["link_source"]) == (
        True,
        people["maintainer"].pk,
        None,
        "hand",
    )
    response = client_for("owner").post(service_url(account), {"owner": None}, format="json")
    body = response.json()
    assert (body["service_account"], body["owner"], body["link_source"]) == (False, None, "")


@pytest.mark.parametrize(
    ("who", "url", "body_of", "message"),
    [
        (
            "maintainer",
            link_url,
            lambda p: {"user": p["maintainer"].pk},
            "Nobody links an account to themselves",
        ),
        ("admin", link_url, lambda p: {"user": p["admin"].pk}, "Nobody links an account to themselves"),
        ("owner", service_url, lambda p: {"owner": p["owner"].pk}, "owner of a service account"),
    ],
)
def test_nobody_decides_about_themselves_403(client_for, people, world, who, url, body_of, message):
    account = world["mine_account"]
    response = client_for(who).post(url(account), body_of(people), format="json")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "permission_denied" and message in error["message"]
    account.refresh_from_db()
    assert (account.user_id, account.link_source, account.service_account) == (None, "", False)


def test_nobody_changes_who_holds_their_own_account(client_for, people, world):
    account = world["mine_account"]
    client_for("owner").post(link_url(account), {"user": people["maintainer"].pk}, format="json")
    for url, body in ((link_url, {"user": None}), (service_url, {"owner": people["owner"].pk})):
        response = client_for("maintainer").post(url(account), body, format="json")
        assert response.status_code == 403, response.content
    assert client_for("admin").post(link_url(account), {"user": None}, format="json").status_code == 200


@pytest.mark.parametrize(
    ("who", "status"), [("owner", 404), ("maintainer", 404), ("other", 403), (None, 401), ("admin", 200)]
)
def test_another_integrations_account_is_not_found(client_for, people, world, who, status):
    account = world["theirs_account"]
    for url, body in ((link_url, {"user": people["other"].pk}), (service_url, {"owner": people["other"].pk})):
        response = client_for(who).post(url(account), body, format="json")
        assert response.status_code == status, response.content
        assert status == 200 or set(response.json()) == {"error"}  # the API's error shape


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "user"),
        ({"user": "abc"}, "user"),
        ({"user": 987654}, "user"),
        ({"user": None, "owner": None}, "owner"),
        ([1, 2], None),
    ],
)
def test_bad_input_is_400_naming_the_field(client_for, world, body, field):
    response = client_for("owner").post(link_url(world["mine_account"]), body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"] if field else "Expected a dictionary" in error["message"]


def test_the_person_chosen_must_be_an_active_user(client_for, people, world):
    other = people["other"]
    other.is_active = False
    other.save()
    for url, field in ((link_url, "user"), (service_url, "owner")):
        response = client_for("owner").post(url(world["mine_account"]), {field: other.pk}, format="json")
        assert response.status_code == 400, response.content
        assert "not an active portal user" in response.json()["error"]["fields"][field][0]


def test_accounts_filter_by_correlation_and_service_account(client_for, people, world):
    mine = world["mine"]
    Account.objects.create(integration=mine, external_id="linked", identity="linked", user=people["other"])
    Account.objects.create(integration=mine, external_id="svc", identity="svc", service_account=True)
    Account.objects.create(
        integration=mine, external_id="gone", identity="gone", removed_at="2024-01-01T00:00Z"
    )
    client = client_for("owner")

    def ids(query: str) -> set[str]:
        response = client.get(f"/api/accounts/?{query}")
        assert response.status_code == 200, response.content
        return {a["external_id"] for a in response.json()["results"]}

    assert ids("correlated=false") == {"mine-a", "gone"}
    assert ids("correlated=false&removed=false") == {"mine-a"}  # the uncorrelated accounts
    assert ids("correlated=true") == {"linked", "svc"}
    assert ids("service_account=true") == {"svc"}
    assert ids(f"user={people['other'].pk}") == {"linked"}
    assert client.get("/api/accounts/?correlated=maybe").status_code == 400
