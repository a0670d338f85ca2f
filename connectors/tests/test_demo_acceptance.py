"""The demo connector through the shared acceptance suite and its connection-error helpers."""

from __future__ import annotations

import pytest

from connectors.demo.connector import connector as demo
from connectors.sdk import ConnectorError
from connectors.testing import ConnectorAcceptanceSuite, assert_connection_errors, connection_error

DEMO = {"url": "https://demo.example.com", "apiToken": "demo", "users": 5}
WRONG_TOKEN = {**DEMO, "apiToken": "not-the-token"}


class TestDemoAcceptance(ConnectorAcceptanceSuite):
    @pytest.fixture
    def connector(self):
        return demo

    @pytest.fixture
    def good_config(self, tmp_path):
        return {
            "url": "https://demo.example.com",
            "apiToken": "demo",
            "users": 120,
            "groups": 8,
            "memberships": 3,
            "seed": 7,
            "dataDir": str(tmp_path / "demo"),
        }

    @pytest.fixture
    def bad_configs(self, good_config):
        return {
            "wrong token": {**good_config, "apiToken": "not-the-token"},
            "wrong password": {
                **good_config,
                "connectionOption": "password",
                "username": "admin",
                "password": "wrong",
            },
            "wrong host": {**good_config, "url": "https://nowhere.invalid"},
            "missing url": {k: v for k, v in good_config.items() if k != "url"},
        }

    @pytest.fixture
    def new_account(self):
        return {
            "identity": "acceptance.user",
            "attributes": {"userName": "acceptance.user", "displayName": "Acceptance User", "groups": []},
        }


class TestDemoAcceptanceWithoutProvisioning(TestDemoAcceptance):
    """Without ``dataDir`` the demo lists and reads only; the suite still passes."""

    @pytest.fixture
    def good_config(self):
        return {"url": "https://demo.example.com", "apiToken": "demo", "users": 40, "groups": 3, "seed": 1}

    @pytest.fixture
    def new_account(self):
        return None

    def test_provisioning_round_trip(self, connector, good_config, new_account):
        """Without ``dataDir`` provisioning is refused with a clear error, and nothing is created."""
        account = {"identity": "refused.user", "attributes": {"userName": "refused.user", "groups": []}}
        with pytest.raises(ConnectorError, match="dataDir"):
            connector.invoke("std:account:create", good_config, account)
        listed, _ = connector.invoke("std:account:list", good_config)
        assert "refused.user" not in {o["identity"] for o in listed}


def test_connection_errors_helper_passes_exact_messages():
    assert connection_error(demo, WRONG_TOKEN) == "authentication failed: invalid API token"
    assert_connection_errors(
        demo,
        DEMO,
        {
            "wrong token": (WRONG_TOKEN, "authentication failed: invalid API token"),
            "wrong host": (
                {**DEMO, "url": "https://nowhere.invalid"},
                "cannot reach the demo directory at https://nowhere.invalid: unknown host 'nowhere.invalid'",
            ),
        },
        secrets=["not-the-token"],
    )


def test_connection_errors_helper_names_every_case_that_differs():
    with pytest.raises(AssertionError) as caught:
        assert_connection_errors(
            demo,
            DEMO,
            {
                "other message": (WRONG_TOKEN, "authentication failed"),
                "connects": (DEMO, "never"),
                "same": (WRONG_TOKEN, "authentication failed: invalid API token"),
            },
        )
    lines = str(caught.value).splitlines()
    assert lines[0] == "connection errors differ:"
    assert lines[1] == (
        "other message: got 'authentication failed: invalid API token', expected 'authentication failed'"
    )
    assert lines[2].startswith("connects: DID NOT RAISE")
    assert not any(line.startswith("same") for line in lines)
    with pytest.raises(AssertionError, match="shows a secret"):
        connection_error(demo, WRONG_TOKEN, secrets=["invalid API"])
    with pytest.raises(ConnectorError, match="invalid API token"):  # the good config must connect
        assert_connection_errors(demo, WRONG_TOKEN, {})
