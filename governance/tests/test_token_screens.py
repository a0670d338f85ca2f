"""Personal API tokens in the UI: created by their user, shown once, stored hashed, revoked at once."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from rest_framework.test import APIClient

from governance.models import ApiToken, AuditEvent, User


def _api(token: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get("/api/tokens/").status_code


@pytest.mark.django_db
def test_create_once_use_and_revoke(client):
    alice = User.objects.create_user("alice", password="pw")
    assert client.get("/account/tokens/").status_code == 302  # sign in first
    client.force_login(alice)
    page = client.get("/account/tokens/")
    assert page.status_code == 200 and "No API tokens yet" in page.content.decode()

    response = client.post("/account/tokens/", {"name": "terraform", "expires_at": ""})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    secret = re.search(r'value="(gov_[^"]+)"', response.content.decode()).group(1)
    row = ApiToken.objects.get(user=alice, name="terraform")
    assert secret.startswith(f"gov_{row.prefix}_") and secret not in row.token_hash
    assert AuditEvent.objects.filter(action="apitoken.create", actor=alice).exists()
    assert _api(secret) == 200
    # Shown once: the list shows the prefix, never the token again.
    listed = client.get("/account/tokens/").content.decode()
    assert f"gov_{row.prefix}_" in listed and secret not in listed

    revoked = client.post(f"/account/tokens/{row.pk}/revoke", follow=True)
    assert "revoked" in revoked.content.decode() and _api(secret) == 401
    row.refresh_from_db()
    assert row.revoked_at is not None


@pytest.mark.django_db
def test_bad_input_and_other_users_tokens(client):
    alice = User.objects.create_user("alice", password="pw")
    bob = User.objects.create_user("bob", password="pw")
    client.force_login(alice)
    response = client.post("/account/tokens/", {"name": "  "})
    assert response.status_code == 400 and "required" in response.content.decode()
    response = client.post("/account/tokens/", {"name": "old", "expires_at": "2000-01-01T00:00"})
    assert response.status_code == 400 and "must be in the future" in response.content.decode()
    response = client.post("/account/tokens/", {"name": "x", "expires_at": "soon"})
    assert response.status_code == 400 and "gov_" not in response.content.decode()
    assert not ApiToken.objects.exists()

    client.force_login(bob)
    client.post("/account/tokens/", {"name": "bob's"})
    bobs = ApiToken.objects.get(user=bob)
    client.force_login(alice)
    assert "bob&#x27;s" not in client.get("/account/tokens/").content.decode()
    assert client.post(f"/account/tokens/{bobs.pk}/revoke").status_code == 404
    assert client.get(f"/account/tokens/{bobs.pk}/revoke").status_code == 405
    bobs.refresh_from_db()
    assert bobs.revoked_at is None


@pytest.mark.django_db(transaction=True)
def test_tokens_screen_in_chromium(live_server, page: Page):
    User.objects.create_user("carol", password="pw-carol-1")
    page.goto(live_server.url + "/account/tokens/")
    page.fill("#id_username", "carol")
    page.fill("#id_password", "pw-carol-1")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    # Reached from the user menu too.
    page.get_by_label("Open user menu").click()
    expect(page.get_by_role("link", name="API tokens")).to_be_visible()

    page.fill("#id_name", "nightly export")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_test_id("new-token")).to_contain_text("shown only this once")
    secret = page.get_by_test_id("new-token-value").input_value()
    row = ApiToken.objects.get(name="nightly export")
    assert secret.startswith(f"gov_{row.prefix}_") and _api(secret) == 200
    expect(page.get_by_test_id(f"token-{row.prefix}")).to_contain_text("Active")

    page.get_by_role("button", name="Revoke nightly export").click()
    expect(page.locator("#confirm-text")).to_contain_text("stop working at once")
    page.locator("#confirm-ok").click()
    expect(page.get_by_test_id(f"token-{row.prefix}")).to_contain_text("Revoked")
    expect(page.get_by_test_id("new-token")).to_have_count(0)  # not shown again
    assert _api(secret) == 401
