"""Who sees whom: admins everybody; others themselves and their direct reports. Anybody else is a 404 exactly
like an id that does not exist, on the screens as in the API; only admins change people."""

import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from governance.tokens import api_token_create
from identities import rights
from identities.selectors import person_for

pytestmark = pytest.mark.django_db

SEES = {
    "admin": {"root", "boss", "alice", "bob", "eve"},
    "boss": {"boss", "alice", "bob"},  # themselves and their direct reports
    "alice": {"alice"},
    "eve": {"eve"},
}


@pytest.mark.parametrize("who", sorted(SEES))
def test_visible_people_by_role(org, who):
    assert {p.user.username for p in rights.visible_people(org[who])} == SEES[who]
    assert rights.sees_others(org[who]) == (who in ("admin", "boss"))
    assert rights.can_edit_person(org[who], person_for(org["alice"])) == (who == "admin")


def test_nobody_signed_out_sees_anybody(org):
    from django.contrib.auth.models import AnonymousUser

    assert not rights.visible_people(AnonymousUser()).exists()
    assert not rights.sees_others(AnonymousUser())


def _api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(actor=user, name='t')[1]}")
    return client


def _page(response) -> str:
    """The page without its per-response CSRF tokens."""
    page = re.sub(r'"X-CSRFToken": "[^"]*"', "", response.content.decode())
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", page)


@pytest.mark.parametrize("who", sorted(SEES))
def test_the_screens_and_the_api_show_the_same_people_and_hide_the_others_alike(org, who):
    screens = Client()
    screens.force_login(org[who])
    api = _api(org[who])
    listed = {row["username"] for row in api.get("/api/people/").json()["results"]}
    assert listed == SEES[who]
    assert {p.user.username for p in screens.get("/people/").context["table"].page.object_list.data} == SEES[
        who
    ]
    missing_screen = screens.get("/people/999999/")
    missing_api = api.get("/api/people/999999/")
    assert missing_screen.status_code == missing_api.status_code == 404
    for name in ("root", "boss", "alice", "bob", "eve"):
        pk = org["admin" if name == "root" else name].pk
        screen, answer = screens.get(f"/people/{pk}/"), api.get(f"/api/people/{pk}/")
        if name in SEES[who]:
            assert screen.status_code == answer.status_code == 200
            assert answer.json()["username"] == name
        else:  # exactly like a missing id
            assert screen.status_code == 404 and _page(screen) == _page(missing_screen)
            assert answer.status_code == 404 and answer.json() == missing_api.json()


def test_the_navigation_shows_people_to_who_sees_others(org):
    client = Client()
    for who, shown in (("admin", True), ("boss", True), ("alice", False)):
        client.force_login(org[who])
        page = client.get(f"/people/{org[who].pk}/").content.decode()
        assert ('href="/people/"' in page and ">People<" in page) == shown, who
        assert f'href="/people/{org[who].pk}/"' in page  # "My profile", for everyone
    assert Client().get("/people/").status_code == 302  # signed out: to the sign-in page
    assert APIClient().get("/api/people/").status_code == 401
