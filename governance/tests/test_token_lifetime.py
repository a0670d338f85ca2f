"""Tokens cannot create tokens, and every token has a maximum lifetime (``API_TOKEN_MAX_DAYS``)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from governance.models import ApiToken, User
from governance.tokens import api_token_create

pytestmark = pytest.mark.django_db


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _iso(when) -> str:
    return when.isoformat().replace("+00:00", "Z")


def test_a_token_cannot_create_a_token():
    alice = User.objects.create_user("alice")
    _, short = api_token_create(actor=alice, name="ci", expires_at=timezone.now() + timedelta(minutes=10))
    for body in (
        {"name": "forever"},
        {"name": "later", "expires_at": _iso(timezone.now() + timedelta(days=30))},
    ):
        response = _bearer(short).post("/api/tokens/", body, format="json")
        assert response.status_code == 403, response.content
        error = response.json()["error"]
        assert error["code"] == "permission_denied" and "cannot create tokens" in error["message"]
    assert ApiToken.objects.filter(user=alice).count() == 1
    # What a token may still do with tokens: list them and revoke (never widen).
    assert _bearer(short).get("/api/tokens/").status_code == 200


def test_the_session_creates_tokens_with_at_most_the_maximum_lifetime(settings):
    settings.API_TOKEN_MAX_DAYS = 30
    alice = User.objects.create_user("alice")
    client = APIClient()
    client.force_login(alice)

    created = client.post("/api/tokens/", {"name": "no expiry given"}, format="json")
    assert created.status_code == 201
    expires = ApiToken.objects.get(name="no expiry given").expires_at
    assert abs(expires - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
    assert created.json()["expires_at"] is not None

    too_long = client.post(
        "/api/tokens/",
        {"name": "too long", "expires_at": _iso(timezone.now() + timedelta(days=31))},
        format="json",
    )
    assert too_long.status_code == 400
    assert too_long.json()["error"]["fields"]["expires_at"] == [
        "A token lives at most 30 days: choose an earlier expiry."
    ]
    assert client.post("/api/tokens/", {"name": "null", "expires_at": None}, format="json").status_code == 201
    assert ApiToken.objects.get(name="null").expires_at is not None
    ok = client.post(
        "/api/tokens/",
        {"name": "a week", "expires_at": _iso(timezone.now() + timedelta(days=7))},
        format="json",
    )
    assert ok.status_code == 201
    assert not ApiToken.objects.filter(name="too long").exists()


def test_the_tokens_screen_applies_the_same_maximum(client, settings):
    settings.API_TOKEN_MAX_DAYS = 30
    alice = User.objects.create_user("alice")
    client.force_login(alice)
    response = client.post("/account/tokens/", {"name": "empty", "expires_at": ""})
    assert response.status_code == 200 and re.search(r'value="gov_', response.content.decode())
    assert ApiToken.objects.get(name="empty").expires_at <= timezone.now() + timedelta(days=30)
    later = (timezone.now() + timedelta(days=60)).strftime("%Y-%m-%dT%H:%M")
    response = client.post("/account/tokens/", {"name": "later", "expires_at": later})
    assert response.status_code == 400 and "at most 30 days" in response.content.decode()
    assert not ApiToken.objects.filter(name="later").exists()


def test_a_token_stored_without_expiry_expires_after_the_maximum(settings):
    settings.API_TOKEN_MAX_DAYS = 30
    alice = User.objects.create_user("alice")
    row, secret = api_token_create(actor=alice, name="old")
    # As an earlier version stored it: no expiry.
    ApiToken.objects.filter(pk=row.pk).update(expires_at=None, created_at=timezone.now() - timedelta(days=29))
    assert _bearer(secret).get("/api/tokens/").status_code == 200
    ApiToken.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(days=31))
    response = _bearer(secret).get("/api/tokens/")
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]
    row.refresh_from_db()
    assert row.is_active is False
