"""Fixtures of the API tests: people in each role, each with a personal token, and a client per person."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from governance.tokens import api_token_create


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()  # throttle counters live in the cache
    yield
    cache.clear()


@pytest.fixture
def people(db, django_user_model):
    make = django_user_model.objects.create
    return {
        "admin": make(username="root", is_staff=True),
        "owner": make(username="owner"),
        "maintainer": make(username="maint"),
        "other": make(username="other"),
    }


@pytest.fixture
def tokens(people):
    return {who: api_token_create(actor=user, name=f"{who} script")[1] for who, user in people.items()}


@pytest.fixture
def client_for(tokens):
    def make(who: str | None) -> APIClient:
        client = APIClient()
        if who is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens[who]}")
        return client

    return make


@pytest.fixture
def world(people, make_integration):
    """Two integrations: "mine" owned by owner and maintained by maintainer, "theirs" by nobody of them."""
    from integrations import services
    from integrations.models import Account, Permission, Resource, Role

    mine = make_integration(name="Mine", owner=people["owner"])
    theirs = make_integration(name="Theirs")
    services.maintainer_add(actor=None, integration=mine, user=people["maintainer"])
    objs = {"mine": mine, "theirs": theirs}
    for key, integ in (("mine", mine), ("theirs", theirs)):
        res = Resource.objects.create(integration=integ, external_id=f"{key}-db", name=f"{key} db")
        role = Role.objects.create(resource=res, external_id=f"{key}-db-read", name="read")
        acct = Account.objects.create(integration=integ, external_id=f"{key}-a", identity=f"{key} account")
        perm = Permission.objects.create(account=acct, role=role)
        objs.update(
            {f"{key}_resource": res, f"{key}_role": role, f"{key}_account": acct, f"{key}_permission": perm}
        )
    return objs
