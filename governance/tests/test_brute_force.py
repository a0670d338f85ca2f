"""Brute force: sign-ins lock out per account and per address (django-axes, on the sign-in screen and
the Django admin), failed API tokens are throttled per address, and the demo admin never gets the
default password in production."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.test import APIClient

from governance.models import User
from governance.tokens import api_token_create

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def _sign_in(client, username: str, password: str, *, address: str = "10.0.0.1", path: str = "/login/"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def _signed_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_an_account_is_locked_after_repeated_failures_whatever_the_address(client, path):
    User.objects.create_user("alice", password="right-pw-1", is_staff=True)
    for i in range(100):  # the attack as observed: 100 wrong passwords, as fast as possible
        response = _sign_in(client, "alice", f"wrong-{i}", address=f"10.0.{i}.1", path=path)
        assert response.status_code in (200, 429)
        if i >= 5:
            assert response.status_code == 429
    # The right password no longer works, from any address, and the page says why.
    locked = _sign_in(client, "alice", "right-pw-1", address="10.9.9.9", path=path)
    assert locked.status_code == 429 and not _signed_in(client)
    assert "Too many sign-in attempts" in locked.content.decode()
    assert "for 15 minutes" in locked.content.decode() and 'href="/login/"' in locked.content.decode()

    # An admin unlocks it (README): the account signs in again.
    call_command("axes_reset_username", "alice")
    assert _sign_in(client, "alice", "right-pw-1", address="10.9.9.9", path=path).status_code == 302
    assert _signed_in(client)


def test_an_address_is_locked_after_failures_across_accounts(client):
    for name in ("u1", "u2", "u3", "u4", "u5", "bob"):
        User.objects.create_user(name, password=f"{name}-right-pw")
    for name in ("u1", "u2", "u3", "u4"):  # one try each: no account reaches its limit
        assert _sign_in(client, name, "guess", address="10.1.1.1").status_code == 200
    assert _sign_in(client, "u5", "guess", address="10.1.1.1").status_code == 429  # the address's fifth
    assert _sign_in(client, "bob", "bob-right-pw", address="10.1.1.1").status_code == 429
    assert not _signed_in(client)
    # Another address is not concerned, and a success there does not unlock the first one.
    assert _sign_in(client, "bob", "bob-right-pw", address="10.2.2.2").status_code == 302
    client.logout()
    assert _sign_in(client, "u1", "u1-right-pw", address="10.1.1.1").status_code == 429


def test_a_few_typos_then_success_start_over(client):
    User.objects.create_user("carol", password="carol-right-pw")
    for _ in range(4):
        _sign_in(client, "carol", "typo")
    assert _sign_in(client, "carol", "carol-right-pw").status_code == 302
    client.logout()
    for _ in range(4):  # the success reset the count: four more typos still do not lock her out
        assert _sign_in(client, "carol", "typo").status_code == 200
    assert _sign_in(client, "carol", "carol-right-pw").status_code == 302


def test_lockout_settings_come_from_the_environment(tmp_path):
    code = "from django.conf import settings; print(settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME)"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    run = [sys.executable, "manage.py", "shell", "-v", "0", "-c", code]
    default = subprocess.run(run, cwd=ROOT, env={**env, "DEBUG": "true", "VAR_DIR": str(tmp_path)},
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert default.stdout.split() == ["5", "0.25"], default.stderr
    custom = subprocess.run(
        run, cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**env, "DEBUG": "true", "VAR_DIR": str(tmp_path), "LOGIN_FAILURE_LIMIT": "3", "LOGIN_LOCKOUT_MINUTES": "60"},
    )  # fmt: skip
    assert custom.stdout.split() == ["3", "1.0"], custom.stderr


# -- API tokens -------------------------------------------------------------------------------------------


@pytest.fixture
def three_failures_a_day(settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "token_failure": "3/day"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    cache.clear()
    yield
    cache.clear()


def _bearer(token: str, address: str):
    return APIClient().get("/api/tokens/", HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR=address)


def test_failed_tokens_are_throttled_per_address(three_failures_a_day):
    alice = User.objects.create_user("alice")
    _, good = api_token_create(actor=alice, name="ci")
    prefix = good.split("_")[1]
    guesses = [f"gov_{prefix}_guess", "gov_00000000_guess", "not-even-a-token"]
    for guess in guesses:
        response = _bearer(guess, "10.3.3.3")
        assert response.status_code == 401 and response.json()["error"]["code"] == "authentication_failed"
    # Locked: every bearer request from this address answers 429, even with a valid token.
    for token in (f"gov_{prefix}_guess", good):
        response = _bearer(token, "10.3.3.3")
        assert response.status_code == 429, response.content
        assert response.json()["error"]["code"] == "throttled"
        assert 0 < int(response["Retry-After"]) <= 86400
    # Another address is not concerned; valid tokens do not count as failures.
    for _ in range(5):
        assert _bearer(good, "10.4.4.4").status_code == 200
    # The browser session of a user at the locked address is not a token: it still works.
    session = APIClient()
    session.force_login(alice)
    assert session.get("/api/tokens/", REMOTE_ADDR="10.3.3.3").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_parallel_guesses_learn_no_more_than_the_budget(three_failures_a_day):
    """Guesses sent together all pass the check before any is counted; only the first three counted are
    judged (401), the others answer 429 whatever they guessed."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def guess(i: int) -> int:
        try:
            return _bearer(f"gov_{i:08x}_guess", "10.7.7.7").status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(guess, range(16)))
    assert statuses.count(401) <= 3 and statuses.count(429) >= 13, statuses


def test_x_forwarded_for_is_ignored_unless_proxies_are_declared(three_failures_a_day, settings):
    for i in range(3):  # a forged header per request does not give a new budget
        _bearer("gov_00000000_guess", "10.5.5.5").status_code  # noqa: B018
        response = APIClient().get(
            "/api/tokens/", HTTP_AUTHORIZATION="Bearer gov_0_x", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}",
            REMOTE_ADDR="10.6.6.6",
        )  # fmt: skip
        assert response.status_code == 401
    assert _bearer("gov_00000000_guess", "10.5.5.5").status_code == 429
    response = APIClient().get(
        "/api/tokens/",
        HTTP_AUTHORIZATION="Bearer gov_0_x",
        HTTP_X_FORWARDED_FOR="192.0.2.77",
        REMOTE_ADDR="10.6.6.6",
    )
    assert response.status_code == 429
